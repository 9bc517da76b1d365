"""HTTP read deadlines through real sockets on ``serve``: a half-sent request, a trickling body and an
idle keep-alive connection are closed, as Centrifugo's net/http server closes them; an upgraded
WebSocket is not, and neither it nor a stream whose body has come holds a body deadline timer.
Deadlines are shortened here through ``build_server(http_timeouts=...)``, and each test waits for the
close with a bound far above them, so a loaded machine only makes it slower."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from helpers.env import free_port
from helpers.server import serving as serving_server

from rotary.server.config.schema import Config, HealthConfig, HTTPServerConfig
from rotary.server.config.schema_transports import HttpAPIConfig, UniHTTPStreamConfig
from rotary.server.http_deadlines import HttpTimeouts, _close_if_unread

SHORT = HttpTimeouts(read_header=0.2, read=0.2, idle=0.2)
CLOSE_WITHIN = 10.0
"""Seconds a test waits for the server to close a connection, against deadlines of 0.2 s."""


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async with serving(SHORT) as found:
        yield found


@pytest.fixture
async def patient_port() -> AsyncIterator[int]:
    """Deadlines no loaded machine reaches, for tests that must not be cut."""
    async with serving(HttpTimeouts(read_header=60, read=60, idle=60)) as found:
        yield found


@asynccontextmanager
async def serving(timeouts: HttpTimeouts) -> AsyncIterator[int]:
    config = Config(
        http_server=HTTPServerConfig(address="127.0.0.1", port=free_port()),
        health=HealthConfig(enabled=True),
        http_api=HttpAPIConfig(key="k"),
        uni_http_stream=UniHTTPStreamConfig(enabled=True),
    )
    async with serving_server(config, timeouts):
        yield config.http_server.port


async def closed_without_answer(reader: asyncio.StreamReader) -> bool:
    """True when the server closes the connection without sending anything more."""
    async with asyncio.timeout(CLOSE_WITHIN):
        return await reader.read() == b""


async def test_half_sent_headers_are_cut(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")  # the blank line never comes
    assert await closed_without_answer(reader)
    writer.close()


async def test_silent_connection_is_cut(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await closed_without_answer(reader)
    writer.close()


async def test_trickling_body_is_cut(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/info HTTP/1.1\r\nHost: localhost\r\nX-API-Key: k\r\nContent-Length: 100\r\n\r\n{"
    )
    assert await closed_without_answer(reader)
    writer.close()


async def test_idle_keep_alive_connection_is_cut(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    async with asyncio.timeout(CLOSE_WITHIN):
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        await reader.readuntil(b"\r\n\r\n")
        assert await reader.readexactly(2) == b"{}"
    assert await closed_without_answer(reader)
    writer.close()


async def test_upgraded_websocket_outlives_the_deadlines(port: int) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/connection/websocket", autoping=False) as ws,
    ):
        await asyncio.sleep(10 * SHORT.read)  # what would have closed it has long fired
        assert not ws.closed
        await ws.send_str('{"id":1,"connect":{}}')  # no token: the server answers, then closes
        reply = await asyncio.wait_for(ws.receive(), CLOSE_WITHIN)
        assert reply.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.CLOSE), reply


async def test_open_websocket_holds_no_body_deadline(patient_port: int) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{patient_port}/connection/websocket", autoping=False),
    ):
        assert body_deadlines() == 0


async def test_body_deadline_stops_when_the_body_is_complete(patient_port: int) -> None:
    """A uni_http_stream request: its handler streams long after its body came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", patient_port)
    writer.write(
        b"POST /connection/uni_http_stream HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{"
    )
    async with asyncio.timeout(CLOSE_WITHIN):
        while body_deadlines() == 0:  # the headers reached the application, the body is incomplete
            await asyncio.sleep(0.01)
        writer.write(b"}")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    assert body_deadlines() == 0  # while the stream goes on
    writer.close()


def body_deadlines() -> int:
    """Body deadline timers the loop holds (the server runs on the test's asyncio loop)."""
    scheduled = getattr(asyncio.get_running_loop(), "_scheduled", None)
    if scheduled is None:
        pytest.skip("this event loop does not list its timers")
    return sum(h._callback is _close_if_unread and not h.cancelled() for h in scheduled)
