"""Unidirectional WebSocket with a plain WebSocket client (aiohttp's), against a real rotary process.

The client sends one message, its connect request, and then only reads: a `connect` push, the pushes
of its server-side subscriptions (token `channels`, the personal channel, the API's `subscribe`),
`{}` pings beside WebSocket ping frames, and a `disconnect` push before the close frame
(https://centrifugal.dev/docs/transports/uni_websocket).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import urllib.parse
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

UNI_CONFIG = merged(
    DEFAULT_CONFIG,
    {
        "uni_websocket": {"enabled": True},
        "client": {
            "ping_interval": "1s",
            "pong_timeout": "500ms",
            "subscribe_to_user_personal_channel": {"enabled": True},
        },
    },
)
UNI_CONFIG["channel"]["namespaces"].append(
    {"name": "uni", "presence": True, "join_leave": True, "force_push_join_leave": True}
)


@pytest.fixture(scope="module")
def uni(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryServer]:
    with running_rotary(tmp_path_factory.mktemp("rotary"), UNI_CONFIG) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def uni_url(server: RotaryServer, **query: str) -> str:
    url = f"ws://127.0.0.1:{server.port}/connection/uni_websocket"
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


async def pushes_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """Every message received up to and including the first that holds ``kind``."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
                continue
            assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, ws.close_code)
            push = orjson.loads(msg.data)
            seen.append(push)
            if kind in push:
                return seen


async def connect(
    session: aiohttp.ClientSession, server: RotaryServer, claims: dict[str, Any]
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await session.ws_connect(uni_url(server), autoping=False)
    await ws.send_str(json.dumps({"token": sign_token(claims)}))
    connect_push = (await pushes_until(ws, "connect"))[-1]
    return ws, connect_push["connect"]


def channel() -> str:
    return "chat:" + uuid.uuid4().hex[:12]


async def test_connect_push_then_publications_of_token_channels(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    ch = channel()
    ws, connected = await connect(session, uni, {"sub": "alice", "channels": [ch]})
    assert connected["client"] and connected["session"] and connected["version"]
    assert connected["ping"] == 1 and "pong" not in connected
    assert ch in connected["subs"] and "#alice" in connected["subs"]
    await uni.api("publish", {"channel": ch, "data": {"text": "hi"}})
    pub = (await pushes_until(ws, "pub"))[-1]
    assert pub["channel"] == ch
    assert pub["pub"]["data"] == {"text": "hi"} and pub["pub"]["offset"] == 1
    await ws.close()


async def test_each_push_of_a_batch_is_its_own_message(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    """Publications fanned out in one loop pass (an API batch) still reach the client one per text
    frame, as Centrifugo sends them without `uni_websocket.join_push_messages`."""
    ch = channel()
    ws, _ = await connect(session, uni, {"sub": "batcher", "channels": [ch]})
    commands = [{"publish": {"channel": ch, "data": {"n": n}}} for n in range(3)]
    await uni.api("batch", {"commands": commands})
    for n in range(3):
        pub = (await pushes_until(ws, "pub"))[-1]
        assert pub["pub"]["data"] == {"n": n}
    await ws.close()


async def test_connect_request_in_query_parameter(uni: RotaryServer, session: aiohttp.ClientSession) -> None:
    ch = channel()
    request = json.dumps({"token": sign_token({"sub": "bob", "channels": [ch]})})
    ws = await session.ws_connect(uni_url(uni, cf_connect=request), autoping=False)
    connected = (await pushes_until(ws, "connect"))[-1]["connect"]
    assert ch in connected["subs"]
    await ws.close()


async def test_api_subscribe_personal_channel_and_join(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    ch = "uni:" + uuid.uuid4().hex[:12]
    ws, _ = await connect(session, uni, {"sub": "carol"})
    await uni.api("subscribe", {"user": "carol", "channel": ch})
    subscribe = (await pushes_until(ws, "subscribe"))[-1]
    assert subscribe["channel"] == ch
    other, _ = await connect(session, uni, {"sub": "dave", "channels": [ch]})
    join = (await pushes_until(ws, "join"))[-1]
    if join["join"]["info"]["user"] == "carol":  # its own join may come first
        join = (await pushes_until(ws, "join"))[-1]
    assert join["join"]["info"]["user"] == "dave"
    await uni.api("publish", {"channel": "#carol", "data": {"personal": True}})
    pub = (await pushes_until(ws, "pub"))[-1]
    assert pub["channel"] == "#carol" and pub["pub"]["data"] == {"personal": True}
    await other.close()
    leave = (await pushes_until(ws, "leave"))[-1]
    assert leave["leave"]["info"]["user"] == "dave"
    await ws.close()


async def test_pings_are_empty_pushes_and_ping_frames(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    ws, _ = await connect(session, uni, {"sub": "erin"})
    kinds: set[str] = set()
    async with asyncio.timeout(WAIT):
        while kinds != {"ping frame", "empty push"}:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.PING:
                kinds.add("ping frame")
                await ws.pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                assert msg.data == "{}"
                kinds.add("empty push")
            else:
                pytest.fail(f"unexpected {msg.type}")
    await ws.close()


async def test_no_pong_to_ping_frames_drops_the_connection(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    ws, _ = await connect(session, uni, {"sub": "frank"})
    async with asyncio.timeout(WAIT):
        while True:  # never answers a ping frame
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break


async def test_api_disconnect_sends_push_then_close_frame(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    ws, _ = await connect(session, uni, {"sub": "grace"})
    await uni.api("disconnect", {"user": "grace", "disconnect": {"code": 4500, "reason": "bye"}})
    push = (await pushes_until(ws, "disconnect"))[-1]
    assert push == {"disconnect": {"code": 4500, "reason": "bye"}}
    async with asyncio.timeout(WAIT):
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert (msg.data, msg.extra) == (4500, "bye")


async def test_malformed_first_message_closes_with_3501(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    ws = await session.ws_connect(uni_url(uni), autoping=False)
    await ws.send_str("not json")
    async with asyncio.timeout(WAIT):
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.CLOSE, msg
    assert (msg.data, msg.extra) == (3501, "bad request")


async def test_malformed_query_parameter_is_400(uni: RotaryServer, session: aiohttp.ClientSession) -> None:
    async with session.get(uni_url(uni, cf_connect="{oops"), headers={"Upgrade": "websocket"}) as response:
        assert response.status == 400
        assert await response.text() == "invalid connect request\n"


async def test_invalid_token_disconnects_with_3500(uni: RotaryServer, session: aiohttp.ClientSession) -> None:
    ws = await session.ws_connect(uni_url(uni), autoping=False)
    await ws.send_str(json.dumps({"token": "not-a-token"}))
    push = (await pushes_until(ws, "disconnect"))[-1]
    assert push == {"disconnect": {"code": 3500, "reason": "invalid token"}}
    async with asyncio.timeout(WAIT):
        msg = await ws.receive()
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 3500)


async def test_join_push_messages_and_disabled_disconnect_push(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    config = merged(
        UNI_CONFIG, {"uni_websocket": {"join_push_messages": True, "disable_disconnect_push": True}}
    )
    with running_rotary(tmp_path, config) as server:
        ch = channel()
        ws, _ = await connect(session, server, {"sub": "heidi", "channels": [ch]})
        await server.api("disconnect", {"user": "heidi"})
        async with asyncio.timeout(WAIT):
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.PING:
                    continue
                if msg.type is aiohttp.WSMsgType.TEXT:
                    assert "disconnect" not in msg.data
                    continue
                break
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 3503)


async def test_shutdown_sends_push_then_close_3001(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    with running_rotary(tmp_path, UNI_CONFIG) as server:
        ws, _ = await connect(session, server, {"sub": "ivan"})
        stopping = asyncio.get_running_loop().run_in_executor(None, server.process.stop)
        push = (await pushes_until(ws, "disconnect"))[-1]
        assert push == {"disconnect": {"code": 3001, "reason": "shutdown"}}
        async with asyncio.timeout(WAIT):
            msg = await ws.receive()
        assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 3001, "shutdown")
        await stopping


def _never_reading_socket(port: int, request: dict[str, Any]) -> socket.socket:
    """A uni_websocket connection (connect request in the URL) on a tiny receive buffer, never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    query = urllib.parse.urlencode({"cf_connect": json.dumps(request)})
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /connection/uni_websocket?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


async def test_client_that_never_reads_is_closed_as_slow(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    # Pings every 25 s: the slow client must be closed for its backlog, not for a missing pong.
    config = merged(
        UNI_CONFIG, {"client": {"queue_max_size": 65536, "ping_interval": "25s", "pong_timeout": "8s"}}
    )
    with running_rotary(tmp_path, config) as server:
        ch = channel()
        slow = _never_reading_socket(server.port, {"token": sign_token({"sub": "slow", "channels": [ch]})})
        try:
            reader, _ = await connect(session, server, {"sub": "reader", "channels": [ch]})
            payload = "x" * 20_000
            for n in range(200):
                await server.api("publish", {"channel": ch, "data": {"n": n, "p": payload}})
                pub = (await pushes_until(reader, "pub"))[-1]
                assert pub["pub"]["data"]["n"] == n
            deadline = time.monotonic() + WAIT
            while "code 3008" not in server.log():
                assert time.monotonic() < deadline, "the slow client was not closed"
                await asyncio.sleep(0.05)
            await reader.close()
        finally:
            slow.close()


async def test_connection_limit_and_origin_check(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    config = merged(
        UNI_CONFIG,
        {
            "client": {"connection_limit": 1, "allowed_origins": ["https://allowed.example"]},
            "uni_sse": {"enabled": True},
            "uni_http_stream": {"enabled": True},
        },
    )
    with running_rotary(tmp_path, config) as server:
        refused = await session.get(
            uni_url(server), headers={"Origin": "https://evil.example", "Upgrade": "websocket"}
        )
        assert refused.status == 403
        ws, _ = await connect(session, server, {"sub": "only"})
        for path, method in [("uni_websocket", "GET"), ("uni_sse", "GET"), ("uni_http_stream", "POST")]:
            url = f"{server.http_url}/connection/{path}"
            async with session.request(method, url, data=b"{}" if method == "POST" else None) as response:
                assert response.status == 503, path
        await ws.close()


async def test_disable_closing_handshake(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    config = merged(UNI_CONFIG, {"uni_websocket": {"disable_closing_handshake": True}})
    with running_rotary(tmp_path, config) as server:
        ws, _ = await connect(session, server, {"sub": "judy"})
        await server.api("disconnect", {"user": "judy"})
        push = (await pushes_until(ws, "disconnect"))[-1]
        assert push == {"disconnect": {"code": 3503, "reason": "force disconnect"}}
        async with asyncio.timeout(WAIT):
            msg = await ws.receive()
            while msg.type is aiohttp.WSMsgType.PING:
                msg = await ws.receive()
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), msg  # no close frame
