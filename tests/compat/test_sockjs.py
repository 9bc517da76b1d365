"""SockJS (rotary's opt-in ``sockjs`` section) at the protocol level, against a real rotary process.

A plain client speaks SockJS framing around the JSON client protocol over each sub-transport
(websocket, xhr polling, xhr_streaming, eventsource): connect, subscribe, a publication sent through
the HTTP API, and a server disconnect as a ``c[code,"reason"]`` frame. Bad input gets a clear
answer: a malformed frame, a wrong origin, oversized messages, unknown sessions, a client that never
reads. centrifuge-js with sockjs-client in Chromium is in tests/compat/browser/test_browser_sockjs.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import DEFAULT_CONFIG, RotaryServer, merged, running_rotary, sign_token

pytestmark = pytest.mark.compat

WAIT = 10.0
GOOD = "http://good.example"
EVIL = "http://evil.example"
PREFIX = "/connection/sockjs"

CONFIG = merged(
    DEFAULT_CONFIG,
    {
        "sockjs": {"enabled": True, "heartbeat_delay": "1s"},
        "client": {"allowed_origins": [GOOD], "queue_max_size": 65536},
        "websocket": {"message_size_limit": 4096},
    },
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryServer]:
    with running_rotary(tmp_path_factory.mktemp("rotary"), CONFIG) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Origin": GOOD}) as s:
        yield s


def session_url(server: RotaryServer, kind: str, session_id: str = "") -> str:
    return f"{server.http_url}{PREFIX}/000/{session_id or uuid.uuid4().hex}/{kind}"


def connect_command(user: str) -> str:
    return json.dumps({"id": 1, "connect": {"token": sign_token({"sub": user})}})


def subscribe_command(channel: str) -> str:
    return json.dumps({"id": 2, "subscribe": {"channel": channel}})


def messages(frame: str) -> list[dict[str, Any]]:
    """The replies of an ``a[...]`` frame: each message is newline-delimited JSON."""
    assert frame.startswith("a"), frame
    replies = []
    for message in orjson.loads(frame[1:]):
        replies += [orjson.loads(line) for line in message.split("\n") if line]
    return replies


class Frames:
    """The SockJS frames of one receiving stream, heartbeats skipped."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines

    async def next(self) -> str:
        while True:
            frame = await asyncio.wait_for(anext(self._lines), WAIT)
            if frame != "h":
                return frame


async def ws_frames(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[str]:
    async for msg in ws:
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        yield msg.data


async def line_frames(response: aiohttp.ClientResponse, eventsource: bool) -> AsyncIterator[str]:
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if eventsource:
            if line.startswith("data: "):
                yield line[len("data: ") :]
        elif line == "h" or (line and set(line) != {"h"}):  # skips the xhr_streaming prelude
            yield line


async def test_info_and_welcome(server: RotaryServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.http_url}{PREFIX}/info") as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == GOOD
        info = await response.json()
    assert info["websocket"] is True and info["cookie_needed"] is False
    async with http.get(f"{server.http_url}{PREFIX}") as response:
        assert await response.text() == "Welcome to SockJS!\n"
    async with http.get(f"{server.http_url}{PREFIX}/iframe.html") as response:
        assert response.status == 200
        assert "sockjs" in await response.text()


async def test_websocket_connect_subscribe_publish_disconnect(
    server: RotaryServer, http: aiohttp.ClientSession
) -> None:
    url = session_url(server, "websocket").replace("http", "ws", 1)
    async with http.ws_connect(url) as ws:
        frames = Frames(ws_frames(ws))
        assert await frames.next() == "o"
        await ws.send_str(json.dumps([connect_command("sw1"), subscribe_command("chat:news")]))
        replies = messages(await frames.next())
        if len(replies) == 1:
            replies += messages(await frames.next())
        assert "connect" in replies[0] and "subscribe" in replies[1]
        await server.api("publish", {"channel": "chat:news", "data": {"text": "hi"}})
        [push] = messages(await frames.next())
        assert push["push"]["pub"]["data"] == {"text": "hi"}
        await server.api("disconnect", {"user": "sw1", "disconnect": {"code": 4000, "reason": "bye"}})
        assert await frames.next() == 'c[4000,"bye"]'


@pytest.mark.parametrize("kind", ["xhr_streaming", "eventsource"])
async def test_streaming_session(server: RotaryServer, http: aiohttp.ClientSession, kind: str) -> None:
    session_id = uuid.uuid4().hex
    method = "GET" if kind == "eventsource" else "POST"
    async with http.request(method, session_url(server, kind, session_id)) as response:
        assert response.status == 200
        frames = Frames(line_frames(response, kind == "eventsource"))
        assert await frames.next() == "o"
        body = json.dumps([connect_command(f"s{kind}"), subscribe_command(f"chat:news{kind}")])
        async with http.post(session_url(server, "xhr_send", session_id), data=body) as sent:
            assert sent.status == 204
        replies = messages(await frames.next())
        if len(replies) == 1:
            replies += messages(await frames.next())
        assert "connect" in replies[0] and "subscribe" in replies[1]
        await server.api("publish", {"channel": f"chat:news{kind}", "data": {"n": 1}})
        [push] = messages(await frames.next())
        assert push["push"]["pub"]["data"] == {"n": 1}
        await server.api("disconnect", {"user": f"s{kind}", "disconnect": {"code": 4001, "reason": "x"}})
        assert await frames.next() == 'c[4001,"x"]'


async def test_xhr_polling_session(server: RotaryServer, http: aiohttp.ClientSession) -> None:
    session_id = uuid.uuid4().hex

    async def poll() -> str:
        while True:
            async with http.post(session_url(server, "xhr", session_id)) as response:
                assert response.status == 200
                frame = (await response.text()).rstrip("\n")
            if frame != "h":
                return frame

    assert await poll() == "o"
    body = json.dumps([connect_command("sxhr"), subscribe_command("chat:newsxhr")])
    async with http.post(session_url(server, "xhr_send", session_id), data=body) as sent:
        assert sent.status == 204
    replies: list[dict[str, Any]] = []
    while len(replies) < 2:
        replies += messages(await poll())
    assert "connect" in replies[0] and "subscribe" in replies[1]
    waiting = asyncio.ensure_future(poll())
    await asyncio.sleep(0)
    await server.api("publish", {"channel": "chat:newsxhr", "data": {"n": 2}})
    [push] = messages(await asyncio.wait_for(waiting, WAIT))
    assert push["push"]["pub"]["data"] == {"n": 2}
    await server.api("disconnect", {"user": "sxhr", "disconnect": {"code": 4002, "reason": "y"}})
    assert await poll() == 'c[4002,"y"]'
    assert await poll() == 'c[4002,"y"]'  # the session answers with its close frame while it lingers


async def test_second_receiver_is_refused(server: RotaryServer, http: aiohttp.ClientSession) -> None:
    session_id = uuid.uuid4().hex
    async with http.post(session_url(server, "xhr_streaming", session_id)) as first:
        frames = Frames(line_frames(first, False))
        assert await frames.next() == "o"
        async with http.post(session_url(server, "xhr_streaming", session_id)) as second:
            refused = await Frames(line_frames(second, False)).next()
            assert refused == 'c[2010,"Another connection still open"]'


async def test_bad_input(server: RotaryServer, http: aiohttp.ClientSession) -> None:
    unknown = session_url(server, "xhr_send")
    async with http.post(unknown, data='["x"]') as response:
        assert response.status == 404
    async with http.get(f"{server.http_url}{PREFIX}/000/a.b/xhr") as response:
        assert response.status == 404
    async with http.post(f"{server.http_url}{PREFIX}/000/abc/jsonp") as response:
        assert response.status == 404
    session_id = uuid.uuid4().hex
    async with http.post(session_url(server, "xhr", session_id)) as response:
        assert await response.text() == "o\n"
    send = session_url(server, "xhr_send", session_id)
    oversized = b'["' + b"x" * 5000 + b'"]'  # past websocket.message_size_limit
    for body, status in ((b"", 400), (b"{not json", 400), (b'{"a": 1}', 400), (oversized, 413)):
        async with http.post(send, data=body) as response:
            assert response.status == status, (body[:20], await response.text())
    async with aiohttp.ClientSession(headers={"Origin": EVIL}) as evil:
        for path in ("/info", "/000/abc/xhr", "/000/abc/websocket"):
            async with evil.get(f"{server.http_url}{PREFIX}{path}") as response:
                assert response.status == 403


async def test_malformed_websocket_frame_closes_with_bad_request(
    server: RotaryServer, http: aiohttp.ClientSession
) -> None:
    url = session_url(server, "websocket").replace("http", "ws", 1)
    async with http.ws_connect(url) as ws:
        frames = Frames(ws_frames(ws))
        assert await frames.next() == "o"
        await ws.send_str("{broken")
        assert await frames.next() == 'c[3501,"bad request"]'
    async with http.ws_connect(url) as ws:
        frames = Frames(ws_frames(ws))
        assert await frames.next() == "o"
        await ws.send_str(json.dumps(["x" * 5000]))  # past websocket.message_size_limit
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        assert ws.close_code == 1009


async def test_client_that_never_reads_is_dropped(server: RotaryServer, http: aiohttp.ClientSession) -> None:
    """A streaming receiver that stops reading meets queue_max_size (3008); others are unaffected."""
    session_id = uuid.uuid4().hex
    response = await http.post(session_url(server, "xhr_streaming", session_id))
    body = json.dumps([connect_command("never-reads"), subscribe_command("chat:flood")])
    async with http.post(session_url(server, "xhr_send", session_id), data=body) as sent:
        assert sent.status == 204

    async def clients() -> int:
        info = await server.api("info", {})
        return sum(n["num_clients"] for n in info["result"]["nodes"])

    async with asyncio.timeout(WAIT):
        while await clients() == 0:
            await asyncio.sleep(0.05)
    big = {"text": "x" * 30000}
    for _ in range(200):
        await server.api("publish", {"channel": "chat:flood", "data": big})
        if await clients() == 0:
            break
    else:
        pytest.fail("the client that never reads was never dropped")
    async with asyncio.timeout(WAIT):  # the server ended the stream it could not write, not waiting forever
        try:
            while await response.content.read(1 << 20):
                pass
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
            pass
    response.close()
    async with http.get(f"{server.http_url}{PREFIX}/info") as ok:
        assert ok.status == 200
    assert "user 'never-reads', code 3008" in server.log()


async def test_shutdown_closes_sessions_with_3001(tmp_path: Path) -> None:
    """SIGTERM: every SockJS session gets c[3001,"shutdown"], whatever its sub-transport."""
    with running_rotary(tmp_path, CONFIG) as server:
        async with aiohttp.ClientSession(headers={"Origin": GOOD}) as http:
            url = session_url(server, "websocket").replace("http", "ws", 1)
            session_id = uuid.uuid4().hex
            async with (
                http.ws_connect(url) as ws,
                http.post(session_url(server, "xhr_streaming", session_id)) as stream,
            ):
                ws_side = Frames(ws_frames(ws))
                stream_side = Frames(line_frames(stream, False))
                assert await ws_side.next() == "o"
                assert await stream_side.next() == "o"
                await ws.send_str(json.dumps([connect_command("down1")]))
                assert "connect" in messages(await ws_side.next())[0]
                body = json.dumps([connect_command("down2")])
                async with http.post(session_url(server, "xhr_send", session_id), data=body) as sent:
                    assert sent.status == 204
                assert "connect" in messages(await stream_side.next())[0]
                await asyncio.to_thread(server.process.stop)
                assert await ws_side.next() == 'c[3001,"shutdown"]'
                assert await stream_side.next() == 'c[3001,"shutdown"]'


async def test_heartbeats_keep_idle_receivers_open(server: RotaryServer, http: aiohttp.ClientSession) -> None:
    """sockjs.heartbeat_delay (1s here): an idle stream gets "h" frames, an idle poll is answered "h"."""
    session_id = uuid.uuid4().hex
    async with http.post(session_url(server, "xhr_streaming", session_id)) as response:
        lines = line_frames(response, False)
        assert await asyncio.wait_for(anext(lines), WAIT) == "o"
        assert await asyncio.wait_for(anext(lines), WAIT) == "h"
    poll_id = uuid.uuid4().hex
    for expected in ("o\n", "h\n"):
        async with http.post(session_url(server, "xhr", poll_id)) as response:
            assert await response.text() == expected
