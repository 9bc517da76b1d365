"""Unidirectional SSE and HTTP streaming, read by aiohttp clients from a real rotary process.

Each stream starts with a `connect` push, carries publications, joins and `{}` pings, and ends with a
`disconnect` push; bad requests get Centrifugo's status codes (400, 405, 413), checked against
Centrifugo v6.9.1 on the same config. See https://centrifugal.dev/docs/transports/uni_sse and
https://centrifugal.dev/docs/transports/uni_http_stream.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
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
BODY_LIMIT = 1024

UNI_CONFIG = merged(
    DEFAULT_CONFIG,
    {
        "uni_sse": {"enabled": True, "max_request_body_size": BODY_LIMIT},
        "uni_http_stream": {"enabled": True, "max_request_body_size": BODY_LIMIT},
        "client": {
            "ping_interval": "1s",
            "pong_timeout": "500ms",
            "connect_code_to_unidirectional_disconnect": {
                "enabled": True,
                "transforms": [{"code": 109, "to": {"code": 4109, "reason": "token expired here"}}],
            },
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
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as s:
        yield s


def channel(namespace: str = "chat") -> str:
    return f"{namespace}:" + uuid.uuid4().hex[:12]


def token(user: str, **claims: Any) -> str:
    return sign_token({"sub": user, **claims})


class Stream:
    """Pushes of one response, parsed as SSE events or JSON lines."""

    def __init__(self, response: aiohttp.ClientResponse, sse: bool) -> None:
        self.response = response
        self.sse = sse
        self._buffer = b""

    async def next(self) -> dict[str, Any] | None:
        """The next push; None when the body ended."""
        separator = b"\n\n" if self.sse else b"\n"
        async with asyncio.timeout(WAIT):
            while separator not in self._buffer.lstrip(b"\r\n"):
                chunk = await self.response.content.readany()
                if not chunk:
                    return None
                self._buffer += chunk
        if self.sse:
            self._buffer = self._buffer.lstrip(b"\r\n")  # the preamble
        message, self._buffer = self._buffer.split(separator, 1)
        if self.sse:
            assert message.startswith(b"data: "), message
            message = message[len(b"data: ") :]
        result: dict[str, Any] = orjson.loads(message)
        return result

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            push = await self.next()
            assert push is not None, f"stream ended before a {kind} push"
            if kind in push:
                return push


def sse_url(server: RotaryServer) -> str:
    return f"{server.http_url}/connection/uni_sse"


def stream_url(server: RotaryServer) -> str:
    return f"{server.http_url}/connection/uni_http_stream"


async def open_sse(session: aiohttp.ClientSession, server: RotaryServer, request: dict[str, Any]) -> Stream:
    response = await session.get(sse_url(server), params={"cf_connect": json.dumps(request)})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    return Stream(response, sse=True)


async def open_stream(
    session: aiohttp.ClientSession, server: RotaryServer, request: dict[str, Any]
) -> Stream:
    response = await session.post(stream_url(server), data=json.dumps(request))
    assert response.status == 200
    return Stream(response, sse=False)


@pytest.mark.parametrize("kind", ["sse", "http_stream"])
async def test_connect_publication_ping_and_disconnect(
    uni: RotaryServer, session: aiohttp.ClientSession, kind: str
) -> None:
    ch = channel()
    user = "u-" + uuid.uuid4().hex[:8]
    request = {"token": token(user, channels=[ch])}
    stream = await (open_sse if kind == "sse" else open_stream)(session, uni, request)
    connected = (await stream.until("connect"))["connect"]
    assert ch in connected["subs"] and connected["session"] and connected["ping"] == 1
    await uni.api("publish", {"channel": ch, "data": {"n": 1}})
    pub = await stream.until("pub")
    assert pub["channel"] == ch and pub["pub"]["data"] == {"n": 1}
    assert await stream.next() == {}  # a ping, at client.ping_interval
    await uni.api("disconnect", {"user": user})
    assert await stream.until("disconnect") == {"disconnect": {"code": 3503, "reason": "force disconnect"}}
    assert await stream.next() is None


async def test_sse_connect_request_in_post_body(uni: RotaryServer, session: aiohttp.ClientSession) -> None:
    ch = channel()
    response = await session.post(sse_url(uni), data=json.dumps({"token": token("poster", channels=[ch])}))
    assert response.status == 200
    connected = (await Stream(response, sse=True).until("connect"))["connect"]
    assert ch in connected["subs"]
    response.close()


async def test_api_subscribe_and_join_reach_http_stream(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    ch = channel("uni")
    user = "sub-" + uuid.uuid4().hex[:8]
    stream = await open_stream(session, uni, {"token": token(user)})
    await stream.until("connect")
    await uni.api("subscribe", {"user": user, "channel": ch})
    assert (await stream.until("subscribe"))["channel"] == ch
    other = await open_sse(session, uni, {"token": token("joiner", channels=[ch])})
    while (join := await stream.until("join"))["join"]["info"]["user"] != "joiner":
        pass
    assert join["channel"] == ch
    other.response.close()
    leave = await stream.until("leave")
    assert leave["leave"]["info"]["user"] == "joiner"  # the hang-up ended the other session
    await uni.api("unsubscribe", {"user": user, "channel": ch})
    unsubscribe = await stream.until("unsubscribe")
    assert unsubscribe["channel"] == ch and unsubscribe["unsubscribe"]["code"] == 2000
    stream.response.close()


async def test_configured_and_default_connect_error_disconnects(
    uni: RotaryServer, session: aiohttp.ClientSession
) -> None:
    expired = token("late", exp=int(time.time()) - 10)
    stream = await open_stream(session, uni, {"token": expired})
    assert await stream.next() == {"disconnect": {"code": 4109, "reason": "token expired here"}}
    assert await stream.next() is None
    stream = await open_sse(session, uni, {"token": "garbage"})
    assert await stream.next() == {"disconnect": {"code": 3500, "reason": "invalid token"}}
    assert await stream.next() is None


@pytest.mark.parametrize("path", ["uni_sse", "uni_http_stream"])
async def test_bad_requests(uni: RotaryServer, session: aiohttp.ClientSession, path: str) -> None:
    url = f"{uni.http_url}/connection/{path}"
    async with session.post(url, data=b'{"token":"' + b"a" * BODY_LIMIT + b'"}') as response:
        assert response.status == 413
    async with session.post(url, data=b"{not json") as response:
        assert response.status == 400
    async with session.post(url, data=b"[]") as response:
        assert response.status == 400
    async with session.put(url, data=b"{}") as response:
        assert response.status == 405
    if path == "uni_sse":
        async with session.get(url, params={"cf_connect": "{oops"}) as response:
            assert response.status == 400
    else:
        async with session.get(url) as response:
            assert response.status == 405
        async with session.options(url) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"


async def test_connect_code_to_http_response(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    rules = {
        "enabled": True,
        "transforms": [{"code": 3500, "to": {"status_code": 401, "body": ""}}],
    }
    config = merged(
        UNI_CONFIG,
        {
            "uni_sse": {"connect_code_to_http_response": rules},
            "uni_http_stream": {"connect_code_to_http_response": rules},
        },
    )
    with running_rotary(tmp_path, config) as server:
        async with session.post(stream_url(server), data=b'{"token":"garbage"}') as response:
            assert (response.status, await response.text()) == (401, "invalid token")
        async with session.get(sse_url(server), params={"cf_connect": '{"token":"garbage"}'}) as response:
            assert (response.status, await response.text()) == (401, "invalid token")
        expired = token("late", exp=int(time.time()) - 10)
        async with session.post(stream_url(server), data=json.dumps({"token": expired})) as response:
            assert (response.status, await response.text()) == (500, "Internal Server Error")


def _raw_sse_request(port: int, request: dict[str, Any]) -> socket.socket:
    """An SSE request on a socket with a tiny receive buffer that is never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    body = json.dumps(request).encode()
    head = f"POST /connection/uni_sse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


async def test_client_that_never_reads_is_closed_as_slow(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    config = merged(UNI_CONFIG, {"client": {"queue_max_size": 65536}})
    with running_rotary(tmp_path, config) as server:
        ch = channel()
        slow = _raw_sse_request(server.port, {"token": token("slow", channels=[ch])})
        try:
            reader = await open_stream(session, server, {"token": token("reader", channels=[ch])})
            await reader.until("connect")
            payload = "x" * 20_000
            received = 0
            for n in range(200):
                await server.api("publish", {"channel": ch, "data": {"n": n, "p": payload}})
                pub = await reader.until("pub")
                assert pub["pub"]["data"]["n"] == n
                received += 1
            assert received == 200
            deadline = time.monotonic() + WAIT
            while "code 3008" not in server.log():
                assert time.monotonic() < deadline, "the slow client was not closed"
                await asyncio.sleep(0.05)
            reader.response.close()
        finally:
            slow.close()


async def test_expired_connection_is_disconnected_with_3005(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """A unidirectional client cannot refresh: past its expiry and the grace delay it gets 3005."""
    config = merged(UNI_CONFIG, {"client": {"expired_close_delay": "100ms"}})
    with running_rotary(tmp_path, config) as server:
        stream = await open_stream(session, server, {"token": token("brief", exp=int(time.time()) + 2)})
        connected = (await stream.until("connect"))["connect"]
        assert connected["expires"] is True and 0 < connected["ttl"] <= 2
        disconnect = await stream.until("disconnect")
        assert disconnect == {"disconnect": {"code": 3005, "reason": "connection expired"}}
        assert await stream.next() is None


async def test_shutdown_sends_disconnect_push_3001(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    with running_rotary(tmp_path, UNI_CONFIG) as server:
        sse = await open_sse(session, server, {"token": token("leaving")})
        stream = await open_stream(session, server, {"token": token("leaving")})
        await sse.until("connect")
        await stream.until("connect")
        stopping = asyncio.get_running_loop().run_in_executor(None, server.process.stop)
        shutdown = {"disconnect": {"code": 3001, "reason": "shutdown"}}
        assert await sse.until("disconnect") == shutdown
        assert await stream.until("disconnect") == shutdown
        assert await sse.next() is None and await stream.next() is None
        await stopping
        assert server.process.process.returncode == 0
