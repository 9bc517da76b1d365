"""uni_websocket's ping frames and pong deadlines wait on the node's shared deadline ticks: many idle
connections add a handful of loop timers, not one per connection, and the frames still go out and a
silent peer is still dropped (https://centrifugal.dev/docs/transports/uni_websocket)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from rotary.node.deadlines import RESOLUTION, Deadlines
from rotary.node.node import Node, NodeConfig
from rotary.transports.uni_websocket import UniWebSocketOptions, uni_websocket_endpoint, uni_websocket_handler

IDLE_CONNECTIONS = 200
WAIT = 10.0


def loop_timers() -> tuple[int, int]:
    """Live timers the asyncio loop holds (the tests run on asyncio's loop, which lists them): the
    shared deadline ticks and all others."""
    scheduled = getattr(asyncio.get_running_loop(), "_scheduled", None)
    if scheduled is None:
        pytest.skip("this event loop does not list its timers")
    live = [h for h in scheduled if not h.cancelled()]  # cancelled ones linger until popped
    ticks = sum(isinstance(h._callback.__self__, Deadlines) for h in live if hasattr(h._callback, "__self__"))
    return ticks, len(live) - ticks


async def raw_connected(server: TestServer) -> asyncio.StreamWriter:
    """A hand-made upgrade and connect, so that no client library's timers are counted."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /uni HTTP/1.1\r\nHost: {server.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    writer.write(b"\x81\x82" + b"\0\0\0\0" + b"{}")  # a masked text frame `{}` (mask of zeros)
    head = await reader.readexactly(2)
    assert head[0] == 0x81 and b'"connect"' in await reader.readexactly(head[1] & 0x7F)
    return writer


@asynccontextmanager
async def serving(options: UniWebSocketOptions) -> AsyncIterator[tuple[Node, TestServer]]:
    node = Node(NodeConfig(ping_interval=0))  # only the transport's ping frames wait
    await node.start()
    app = web.Application()
    endpoint = uni_websocket_endpoint(node, options)
    app.on_shutdown.append(endpoint.shutdown)
    app.router.add_get("/uni", uni_websocket_handler(endpoint, options))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield node, server
    finally:
        await server.close()
        await node.shutdown()


async def connected(session: aiohttp.ClientSession, server: TestServer) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(server.make_url("/uni"), autoping=False)
    await ws.send_str("{}")
    assert '"connect"' in await ws.receive_str()
    return ws


async def test_idle_connections_hold_no_loop_timer_each() -> None:
    async with serving(UniWebSocketOptions()) as (node, server):
        loop = asyncio.get_running_loop()
        _, others_before = loop_timers()
        started = loop.time()
        writers = [await raw_connected(server) for _ in range(IDLE_CONNECTIONS)]
        spanned_ticks = (loop.time() - started) / RESOLUTION + 2
        ticks, others = loop_timers()
        assert others - others_before <= 5, (
            f"{others - others_before} timers for {IDLE_CONNECTIONS} connections"
        )
        # The ping frames are due 25 s after the connections were made, in the ticks that spans.
        assert ticks == node.deadlines.timers <= spanned_ticks
        assert node.deadlines.pending == IDLE_CONNECTIONS
        for writer in writers:
            writer.close()


async def answers_pings(ws: aiohttp.ClientWebSocketResponse, count: int) -> None:
    while count:
        msg = await ws.receive()
        assert msg.type in (WSMsgType.PING, WSMsgType.TEXT), msg  # pings and `{}` pushes
        if msg.type is WSMsgType.PING:
            count -= 1
            await ws.pong(msg.data)


async def dropped_without_answering(ws: aiohttp.ClientWebSocketResponse) -> None:
    while (msg := await ws.receive()).type in (WSMsgType.PING, WSMsgType.TEXT):
        pass  # never answers a ping frame
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)


async def test_ping_frames_go_out_and_a_silent_peer_is_dropped() -> None:
    async with (
        serving(UniWebSocketOptions(ping_interval=0.3, pong_timeout=0.3)) as (_, server),
        aiohttp.ClientSession() as session,
    ):
        answering = await connected(session, server)
        silent = await connected(session, server)
        async with asyncio.timeout(WAIT):
            # The answering peer outlives several pong deadlines; the silent one does not.
            await asyncio.gather(answers_pings(answering, 4), dropped_without_answering(silent))
        assert not answering.closed
        await answering.close()
