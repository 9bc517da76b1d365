"""The WebSocket mount's shortcut past uvicorn's ``send`` (transports/mounts/asgi_uvicorn.py), in a
real uvicorn with real clients.

Where the shortcut writes is told by uvicorn itself: with its ``uvicorn.error`` logger at DEBUG,
the websockets library behind ``websockets-sansio`` logs every frame that ``send`` has it
serialize (``> TEXT ...``); the frames rotary writes past ``send`` are not among them. The whole
SDK suite runs with and without the shortcut in test_mounts_sdk.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
import websockets
from conftest import unique_channel
from helpers.env import free_port
from helpers.mount_hosts import serving_uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from test_slow_client import RawWebSocket
from websockets.frames import Frame, Opcode

from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.node import Node
from rotary.transports.mounts.asgi import asgi_app
from rotary.transports.mounts.asgi_websocket import AsgiWebSocketTransport

pytestmark = pytest.mark.compat

PATH = "/rt/connection/websocket"
PLAIN = {"ws": "websockets-sansio", "ws_per_message_deflate": False, "ws_ping_interval": None}
"""uvicorn as docs/fastapi.md runs it: the shortcut's case."""
HIGH_WATER = 64 * 1024
"""asyncio's default high-water mark of a transport's write buffer, where uvicorn stops sending."""


def starlette(node: Node) -> Any:
    """A host whose middlewares wrap ``send`` (ExceptionMiddleware always, SessionMiddleware here)."""
    return Starlette(routes=[Mount("/rt", asgi_app(node))], middleware=[Middleware(SessionMiddleware, "s")])


def bare(node: Node) -> Any:
    """The mount alone, its ``send`` uvicorn's own bound method."""
    mount = asgi_app(node)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["root_path"] = "/rt"
        scope["path"] = scope["path"].removeprefix("/rt")
        await mount(scope, receive, send)

    return app


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    node = Node(hooks=AllowAllHooks())
    await node.start()
    yield node
    await node.shutdown(5)


class FramedLog(logging.Handler):
    """The data frames uvicorn's websockets serialize, from its DEBUG log (uvicorn's loggers do not
    propagate to the root, where caplog listens)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.frames: list[Frame] = []
        self._logger = logging.getLogger("uvicorn.error")
        self._level = self._logger.level

    def start(self) -> None:
        """Once uvicorn has set up its logging, before a client connects (websockets decides at
        the handshake whether to log frames)."""
        self._level = self._logger.level
        self._logger.addHandler(self)
        self._logger.setLevel(logging.DEBUG)

    def stop(self) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)

    def emit(self, record: logging.LogRecord) -> None:
        frame = record.args[0] if record.msg == "> %s" and isinstance(record.args, tuple) else None
        if isinstance(frame, Frame) and frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.frames.append(frame)


@pytest.fixture
def uvicorn_log() -> Iterator[FramedLog]:
    log = FramedLog()
    yield log
    log.stop()


def transport_of(node: Node) -> AsgiWebSocketTransport:
    (client,) = node.hub.clients.values()
    assert isinstance(client, Client) and isinstance(client.transport, AsgiWebSocketTransport)
    return client.transport


LEGACY = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated"),
    pytest.mark.filterwarnings("ignore:remove second argument of ws_handler:DeprecationWarning"),
]
"""uvicorn's legacy implementation warns on every connection under websockets 17."""
CASES = [
    pytest.param(bare, PLAIN, "deflate", True, id="bare, sansio, no deflate"),
    pytest.param(starlette, PLAIN, "deflate", True, id="starlette, sansio, no deflate"),
    pytest.param(bare, {"ws": "websockets-sansio"}, "deflate", False, id="sansio, deflate offered and taken"),
    pytest.param(bare, {"ws": "websockets-sansio"}, None, True, id="sansio, deflate on, not offered"),
    pytest.param(starlette, {"ws": "wsproto", "ws_per_message_deflate": False}, None, False, id="wsproto"),
    pytest.param(
        starlette,
        {"ws": "websockets", "ws_per_message_deflate": False},
        None,
        False,
        id="legacy",
        marks=LEGACY,
    ),
]
"""(host, uvicorn options, what the client offers, whether the shortcut engages)."""


@pytest.mark.parametrize("host, options, compression, shortcut", CASES)
async def test_the_shortcut_engages_only_where_send_would_write_the_same_bytes(
    node: Node,
    uvicorn_log: FramedLog,
    host: Any,
    options: dict[str, Any],
    compression: str | None,
    shortcut: bool,
) -> None:
    port = free_port()
    async with serving_uvicorn(host(node), port, **options):
        uvicorn_log.start()
        url = f"ws://127.0.0.1:{port}{PATH}"
        async with websockets.connect(url, compression=compression, subprotocols=["centrifuge-json"]) as ws:  # type: ignore[list-item]
            await ws.send(orjson.dumps({"id": 1, "connect": {}}))
            assert "connect" in orjson.loads(await ws.recv())
            assert (transport_of(node).direct is not None) is shortcut
            channel = unique_channel()
            await ws.send(orjson.dumps({"id": 2, "subscribe": {"channel": channel}}))
            assert "subscribe" in orjson.loads(await ws.recv())
            for n in range(5):
                await node.publish(channel, orjson.dumps({"n": n}))
                push = orjson.loads(await ws.recv())
                assert push["push"]["pub"]["data"] == {"n": n}
            if options.get("ws") == "websockets-sansio":
                assert len(uvicorn_log.frames) == (0 if shortcut else 7)


async def test_writes_keep_their_order_across_the_fallback(node: Node, uvicorn_log: FramedLog) -> None:
    """A client that does not read for a while: publications go past ``send`` until uvicorn's
    transport pauses, then wait behind a ``send`` and go out joined, then past ``send`` again; the
    client reads them all, in order, after the connect and subscribe replies."""
    port = free_port()
    async with serving_uvicorn(bare(node), port, **PLAIN):
        uvicorn_log.start()
        raw = await asyncio.to_thread(RawWebSocket, port, PATH)
        try:
            raw.command(id=1, connect={})
            raw.command(id=2, subscribe={"channel": (channel := unique_channel())})
            assert "connect" in await asyncio.to_thread(raw.reply, 1)
            assert "subscribe" in await asyncio.to_thread(raw.reply, 2)
            sender = transport_of(node).sender
            fill = "x" * 10_000
            sent = 0
            while sender.get_write_buffer_size() == 0:  # the shortcut writes until uvicorn pauses
                assert sent < 5000, "uvicorn never paused writing"
                await node.publish(channel, orjson.dumps({"n": sent, "fill": fill}))
                await asyncio.sleep(0)  # the hub writes in the next loop pass
                sent += 1
            assert not uvicorn_log.frames
            for _ in range(20):  # these wait behind the send that waits for uvicorn
                await node.publish(channel, orjson.dumps({"n": sent, "fill": fill}))
                sent += 1
            assert await asyncio.to_thread(_numbers, raw, sent) == list(range(sent))
            framed = len(uvicorn_log.frames)
            assert framed >= 1  # the send that waited, then what waited behind it, joined
            await _until(lambda: sender.get_write_buffer_size() == 0)
            for _ in range(5):
                await node.publish(channel, orjson.dumps({"n": sent, "fill": ""}))
                sent += 1
            assert await asyncio.to_thread(_numbers, raw, 5) == list(range(sent - 5, sent))
            assert len(uvicorn_log.frames) == framed  # past send again
        finally:
            raw.close()


async def test_a_client_that_stops_reading_is_held_to_the_queue_limit_and_gets_3008(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    """What the server holds for a peer that never reads: at most ``queue_max_size`` behind the
    mount's waiting send plus uvicorn's transport buffer (its high-water mark, or one joined
    flush), whichever path wrote; then 3008 as on every transport."""
    caplog.set_level(logging.DEBUG, logger="rotary.client")
    port = free_port()
    async with serving_uvicorn(bare(node), port, **PLAIN):
        raw = await asyncio.to_thread(RawWebSocket, port, PATH)
        try:
            raw.command(id=1, connect={})
            raw.command(id=2, subscribe={"channel": (channel := unique_channel())})
            assert "subscribe" in await asyncio.to_thread(raw.reply, 2)
            transport = transport_of(node)
            assert transport.direct is not None
            big = orjson.dumps({"fill": "x" * 100_000})
            limit = node.config.queue_max_size
            held = 0
            for _ in range(60_000_000 // len(big)):
                await node.publish(channel, big)
                await asyncio.sleep(0)
                now = (
                    transport.sender.get_write_buffer_size()
                    + transport.direct.transport.get_write_buffer_size()
                )
                held = max(held, now)
                if _closed_slow(caplog):
                    break
            assert _closed_slow(caplog)
            assert held <= limit + HIGH_WATER + 2 * (len(big) + 100), held
            assert not node.hub.clients
        finally:
            raw.close()


def _closed_slow(caplog: pytest.LogCaptureFixture) -> bool:
    return any(getattr(record, "code", None) == 3008 for record in caplog.records)


def _numbers(raw: RawWebSocket, count: int) -> list[int]:
    """The ``n`` of the next ``count`` publications ``raw`` reads."""
    numbers: list[int] = []
    while len(numbers) < count:
        opcode, payload = raw.frame()
        assert opcode == 0x1, opcode
        numbers += [orjson.loads(line)["push"]["pub"]["data"]["n"] for line in payload.splitlines()]
    return numbers


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
