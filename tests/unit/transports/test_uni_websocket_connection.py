"""uni_websocket after its upgrade is rotary's own protocol (transports/uni_websocket.py on
transports/ws_protocol.py): an idle connection holds no task and nothing of aiohttp, a connect
request sent with the upgrade request is read, later messages are ignored, and the application's
shutdown ends what is left with the disconnect push and close frame 3001
(https://centrifugal.dev/docs/transports/uni_websocket)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from aiohttp.web_protocol import RequestHandler
from helpers.ws_served import Served, live, serving, settle

from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeConfig
from rotary.transports.uni_websocket import (
    UniWebSocketConnection,
    UniWebSocketOptions,
    uni_websocket_endpoint,
    uni_websocket_handler,
)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    options = UniWebSocketOptions()
    endpoint = uni_websocket_endpoint(node, options)
    async with serving(node, endpoint, "/uni", uni_websocket_handler(endpoint, options)) as served:
        yield served


async def connected(session: aiohttp.ClientSession, served: Served) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(served.server.make_url("/uni"), autoping=False)
    await ws.send_str("{}")
    assert '"connect"' in await ws.receive_str()
    return ws


async def test_idle_connections_hold_no_task_and_nothing_of_aiohttp(served: Served) -> None:
    tasks_before = len(asyncio.all_tasks())
    kinds = (RequestHandler, web.WebSocketResponse, web.Request)
    before = [live(kind) for kind in kinds]  # earlier tests in this process may have left some
    async with aiohttp.ClientSession() as session:
        sockets = [await connected(session, served) for _ in range(10)]
        await settle(lambda: served.aiohttp_connections() == 0)
        server_tasks = [t for t in asyncio.all_tasks() if "uni_websocket" in repr(t.get_coro())]
        assert server_tasks == []
        assert len(asyncio.all_tasks()) - tasks_before <= 1  # the client session's
        assert all(live(kind) <= count for kind, count in zip(kinds, before, strict=True))
        assert len(served.endpoint.live) == 10 == len(served.node.hub.clients)
        for ws in sockets:
            await ws.send_str('{"id":1,"subscribe":{"channel":"x"}}')  # ignored, as every later message
        for ws in sockets:
            await ws.close()
            assert ws.close_code == 1000  # our close code echoed, as Go's library does
    await settle(lambda: not served.endpoint.live)
    assert live(UniWebSocketConnection) == 0 and not served.node.hub.clients


async def test_a_connect_request_sent_with_the_upgrade_request_is_read(served: Served) -> None:
    reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    request = b"{}"
    mask = b"\x11\x22\x33\x44"
    frame = bytes([0x81, 0x80 | len(request)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(request))
    writer.write(
        f"GET /uni HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        + frame
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    first, size = await reader.readexactly(2)
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2))
    push = await reader.readexactly(size)
    assert first == 0x81 and push.startswith(b'{"connect":')
    writer.close()
    await writer.wait_closed()
    await settle(lambda: not served.endpoint.live)


async def test_shutdown_pushes_3001_before_the_close_frame(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await connected(session, served)
        await served.endpoint.shutdown(served.app)
        push = orjson.loads(await ws.receive_str())
        assert push == {"disconnect": {"code": 3001, "reason": "shutdown"}}
        msg = await ws.receive()
        assert msg.type is WSMsgType.CLOSE and msg.data == 3001
    assert not served.endpoint.live


@pytest.mark.parametrize(
    ("sent", "code"),
    [(b"not json", 3501), (b"\x81\x02{}", 1002)],  # a malformed connect request; a frame unmasked
    ids=["bad-request", "frame-error"],
)
async def test_close_frames_sent_are_counted_as_outgoing_closes(sent: bytes, code: int) -> None:
    """Centrifugo's uni_websocket handler counts the close code of the first close frame it sends
    (centrifugo_transport_outgoing_close_count, transport="uni_websocket")."""
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0), metrics=metrics)
    await node.start()
    options = UniWebSocketOptions()
    app = web.Application()
    app.router.add_get("/uni", uni_websocket_handler(uni_websocket_endpoint(node, options), options))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(server.make_url("/uni"))
            if sent.startswith(b"\x81"):
                assert ws._writer is not None
                ws._writer.transport.write(sent)  # raw bytes: aiohttp's writer would mask them
            else:
                await ws.send_bytes(sent)
            msg = await ws.receive()
            assert msg.type is WSMsgType.CLOSE and msg.data == code
        assert metrics.outgoing_closes == {("uni_websocket", str(code)): 1}
    finally:
        await server.close()
        await node.shutdown()
