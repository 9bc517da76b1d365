"""The hand-over of an upgraded WebSocket from aiohttp to rotary's own protocol, with a real Node, real
sockets and aiohttp's client: nothing of aiohttp's stays per connection (no task, no request, no
entry in its server), nothing leaks when connections end, and the close handshakes go both ways."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from aiohttp.web_protocol import RequestHandler
from helpers.ws_served import Served, live, serving, settle
from hypothesis import given
from hypothesis import strategies as st

from rotary.engines.base import PublishOptions
from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes
from rotary.protocol.ws_reader import unmask
from rotary.server.config.load import load_config, parse_config
from rotary.server.connection_routes import WEBSOCKET_SERVER_VARIABLE, connection_routes
from rotary.transports.ws_connection import (
    WebSocketConnection,
    own_websocket_handler,
    websocket_endpoint,
)
from rotary.transports.ws_protocol import aiohttp_unmask


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    endpoint = websocket_endpoint(node, 1000, 0, 0.5)
    async with serving(node, endpoint, "/ws", own_websocket_handler(node, endpoint)) as served:
        yield served


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def subscribed(session: aiohttp.ClientSession, served: Served) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(served.server.make_url("/ws"))
    await ws.send_str('{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"news"}}')
    replies = 0
    while replies < 2:
        replies += len((await ws.receive_str()).splitlines())
    return ws


async def test_idle_connections_hold_no_task_and_nothing_of_aiohttp(served: Served) -> None:
    tasks_before = len(asyncio.all_tasks())
    fds_before = open_fds()
    kinds = (RequestHandler, web.WebSocketResponse, web.Request)
    before = [live(kind) for kind in kinds]  # earlier tests in this process may have left some
    async with aiohttp.ClientSession() as session:
        sockets = [await subscribed(session, served) for _ in range(20)]
        await settle(lambda: served.aiohttp_connections() == 0)
        # The client session's reader tasks are the test's; the server adds none per connection.
        server_tasks = [t for t in asyncio.all_tasks() if "ws_connection" in repr(t.get_coro())]
        assert server_tasks == []
        assert len(asyncio.all_tasks()) - tasks_before <= 1
        assert all(live(kind) <= count for kind, count in zip(kinds, before, strict=True))
        assert len(served.endpoint.live) == 20 == len(served.node.hub.clients)
        await served.node.publish("news", b'{"n":1}', PublishOptions())
        for ws in sockets:
            assert (await ws.receive_str()).endswith('{"n":1}}}}')
        for ws in sockets:
            await ws.close()
            assert ws.close_code == 1000  # our close code echoed, as Go's library does
    await settle(lambda: not served.endpoint.live)
    assert live(WebSocketConnection) == 0 and not served.node.hub.clients
    await settle(lambda: open_fds() <= fds_before)
    assert len(asyncio.all_tasks()) == tasks_before


async def test_frames_sent_with_the_upgrade_request_are_served(served: Served) -> None:
    """The client's first frame can arrive in the same read as its upgrade request; aiohttp has it
    buffered at the hand-over, and it must not be lost."""
    reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    connect = b'{"id":1,"connect":{}}'
    mask = b"\x11\x22\x33\x44"
    frame = bytes([0x81, 0x80 | len(connect)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(connect))
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        + frame
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    first, size = await reader.readexactly(2)
    reply = await reader.readexactly(size)  # a short reply: 7-bit length
    assert first == 0x81 and reply.startswith(b'{"id":1,"connect":')
    writer.close()
    await writer.wait_closed()
    await settle(lambda: not served.endpoint.live)


async def test_each_message_is_served_after_the_last_command_ended(served: Served) -> None:
    """Commands that never wait end within their task's first step, which on Python 3.12+ runs
    eagerly: the connection must not take that finished task for one still running (it then held
    every later message back, and the subscribe below was never answered)."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(served.server.make_url("/ws"))
        await ws.send_str('{"id":1,"connect":{}}')
        assert '"id":1' in await ws.receive_str()
        for n in range(2, 5):
            await ws.send_str(f'{{"id":{n},"subscribe":{{"channel":"c{n}"}}}}')
            async with asyncio.timeout(60):  # only stops a broken run hanging
                assert await ws.receive_str() == f'{{"id":{n},"subscribe":{{}}}}'
        await ws.close()
    await settle(lambda: not served.endpoint.live)


async def test_messages_read_while_a_command_runs_wait_their_turn(served: Served) -> None:
    """Frames of one read are served one message at a time, in order; reading resumes after."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(served.server.make_url("/ws"))
        commands = ['{"id":1,"connect":{}}'] + [
            f'{{"id":{i},"subscribe":{{"channel":"c{i}"}}}}' for i in range(2, 7)
        ]
        for command in commands:  # aiohttp's client writes each frame at once: one read, likely
            await ws.send_str(command)
        ids = []
        while len(ids) < len(commands):
            ids += [int(line.split(",")[0].split(":")[1]) for line in (await ws.receive_str()).splitlines()]
        assert ids == list(range(1, 7))
        await ws.send_str('{"id":7,"subscribe":{"channel":"after"}}')
        assert (await ws.receive_str()).startswith('{"id":7,')
        await ws.close()
    await settle(lambda: not served.endpoint.live)


async def test_a_server_disconnect_is_a_close_frame_with_centrifugos_code(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await subscribed(session, served)
        (client,) = served.node.hub.clients.values()
        client.close(codes.DISCONNECT_FORCE_NO_RECONNECT)
        msg = await ws.receive()
        assert msg.type is WSMsgType.CLOSE
        assert (msg.data, msg.extra) == (codes.DISCONNECT_FORCE_NO_RECONNECT.code, "force disconnect")
    await settle(lambda: not served.endpoint.live)


async def test_pings_are_answered_and_oversized_messages_get_1009(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(served.server.make_url("/ws"), autoping=False)
        await ws.ping(b"hi")
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.PONG, b"hi")
        await ws.send_str("x" * 1001)
        msg = await ws.receive()
        assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1009, "")
    await settle(lambda: not served.endpoint.live)


async def test_a_peer_that_never_answers_our_close_is_dropped_after_the_write_timeout(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(served.server.make_url("/ws"), autoclose=False)
        await ws.send_str('{"id":1,"connect":{}}')
        await ws.receive_str()
        for client in list(served.node.hub.clients.values()):
            client.close(codes.DISCONNECT_SHUTDOWN)
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 3001)
        await settle(lambda: not served.endpoint.live)  # the 0.5 s write timeout, then our FIN
        assert (await ws.receive()).type in (WSMsgType.CLOSED, WSMsgType.CLOSING)


async def test_the_applications_shutdown_closes_what_is_left_with_3001(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await subscribed(session, served)
        await served.server.close()
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 3001)
    assert not served.endpoint.live and not served.node.hub.clients


@pytest.mark.parametrize(("value", "own"), [(None, True), ("own", True), ("aiohttp", False)])
def test_the_private_switch_picks_the_server(
    monkeypatch: pytest.MonkeyPatch, value: str | None, own: bool
) -> None:
    if value is None:
        monkeypatch.delenv(WEBSOCKET_SERVER_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(WEBSOCKET_SERVER_VARIABLE, value)
    routes = connection_routes(load_config(None, {}, {}).config)
    assert routes.websocket is not None and routes.websocket.own_protocol is own


def test_the_switch_is_no_config_key_and_draws_no_warning() -> None:
    environ = {WEBSOCKET_SERVER_VARIABLE: "aiohttp", "CENTRIFUGO_WEBSOCKET_SERVER": "own"}
    assert parse_config("", environ).warnings == ["unknown environment variable: CENTRIFUGO_WEBSOCKET_SERVER"]


async def test_a_frame_error_close_is_counted_as_an_outgoing_close() -> None:
    """centrifugo_transport_outgoing_close_count counts the reader's 1002 as Centrifugo's does."""
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0), metrics=metrics)
    await node.start()
    endpoint = websocket_endpoint(node, 1000, 0, 0.5)
    app = web.Application()
    app.router.add_get("/ws", own_websocket_handler(node, endpoint))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(server.make_url("/ws"))
            assert ws._writer is not None
            ws._writer.transport.write(b"\x81\x02{}")  # unmasked: aiohttp's writer would mask it
            msg = await ws.receive()
            assert msg.type is WSMsgType.CLOSE and msg.data == 1002
        assert metrics.outgoing_closes == {("websocket", "1002"): 1}
    finally:
        await server.close()
        await node.shutdown()


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_aiohttp_unmask_is_the_readers_own(payload: bytes, mask: bytes) -> None:
    """The connection's reader unmasks with aiohttp's loop: the same bytes as ws_reader.unmask."""
    assert aiohttp_unmask(payload, mask) == unmask(payload, mask)
