"""What rotary's own WebSocket protocols share once a socket has left aiohttp after its upgrade.

Both WebSocket endpoints, bidirectional (transports/ws_connection.py) and unidirectional
(transports/uni_websocket.py), let aiohttp route the upgrade request through every middleware and
the origin check, answer it (transports/ws_handshake.py, or aiohttp's own handshake for anything
else), then :func:`hand_over` the socket to an :class:`OwnWebSocket`: frames are read by rotary's
:class:`rotary.protocol.ws_reader.MessageReader`, so a client that breaks RFC 6455 gets the close
code and reason Centrifugo's Go reader gives it, on either endpoint (ARCHITECTURE.md, decision 27).
See https://centrifugal.dev/docs/transports/websocket and
https://centrifugal.dev/docs/transports/uni_websocket.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.http_websocket import WebSocketWriter
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes
from rotary.protocol.framing import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    ws_close_frame,
    ws_pong_frame,
)
from rotary.protocol.ws_reader import (
    CLOSE_NO_STATUS,
    FrameError,
    MessageReader,
    ReadLimits,
    close_code_of,
    unmask,
)
from rotary.transports.websocket import negotiate_deflate
from rotary.transports.ws_handshake import HandedOver, answer, switching_protocols

_mask_in_place: Callable[[bytes, bytearray], None] | None
try:  # internal to aiohttp (its _websocket package): without it the reader keeps its own XOR
    from aiohttp._websocket import helpers as _aiohttp_websocket

    _mask_in_place = _aiohttp_websocket.websocket_mask
except (ImportError, AttributeError):  # pragma: no cover
    _mask_in_place = None


def aiohttp_unmask(payload: bytes, mask: bytes) -> bytes:
    """:func:`rotary.protocol.ws_reader.unmask` by aiohttp's masking loop (compiled, but for an
    aiohttp built without its extensions): about a third of the big-integer XOR's instructions
    for a command-sized payload (issue 15)."""
    if _mask_in_place is None:  # pragma: no cover
        return unmask(payload, mask)
    data = bytearray(payload)
    _mask_in_place(mask, data)
    return bytes(data)


class _Reader(MessageReader):
    """The frame reader, unmasking with aiohttp's loop (protocol/ may not import aiohttp)."""

    __slots__ = ()
    _unmask = staticmethod(aiohttp_unmask)


OPEN = 0
CLOSING = 1
"""Our close frame went out: data is ignored until the peer's close frame or the timer ends the socket."""
FAILED = 2
"""The peer broke the protocol or a limit: nothing it sends is read any more."""
LOST = 3
"""The socket is gone."""


class WebSocketEndpoint:
    """What every connection of one endpoint shares, and the connections still open, so that the
    application's shutdown can end them (aiohttp no longer knows them)."""

    def __init__(self, node: Node, limits: ReadLimits, write_timeout: float) -> None:
        self.node = node
        self.limits = limits
        self.write_timeout = write_timeout
        self.live: set[OwnWebSocket] = set()
        self._drained: asyncio.Future[None] | None = None

    def forget(self, connection: OwnWebSocket) -> None:
        self.live.discard(connection)
        if not self.live and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def shutdown(self, _: web.Application) -> None:
        """aiohttp's on_shutdown: 3001 to whatever the node's shutdown left open, a write timeout for
        the close frames, then the rest is aborted."""
        for connection in list(self.live):
            connection.client.close(codes.DISCONNECT_SHUTDOWN)
        if self.live:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), self.write_timeout * 2)
            except TimeoutError:
                pass
        for connection in list(self.live):
            connection.abort()


class OwnWebSocket(asyncio.Protocol):
    """One upgraded connection read by rotary: control frames, the peer's close and frame errors are
    handled here as Go's WebSocket library handles them; what a data message means is the
    subclass's (:meth:`_message`). A task the subclass runs for the connection (``_task``) keeps it
    in its endpoint's live set until it ends, so that shutdown waits for it."""

    __slots__ = ("_close_timer", "_endpoint", "_reader", "_sock", "_state", "_task", "client")

    def __init__(self, endpoint: WebSocketEndpoint, sock: asyncio.Transport, deflate: bool) -> None:
        self._endpoint = endpoint
        self._sock = sock
        self._reader = _Reader(endpoint.limits, deflate)
        self._state = OPEN
        self._task: asyncio.Task[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.client: Client

    # -- the node's Transport (the rest is the subclass's) -------------------------------------

    def write_prepared(self, frame: bytes) -> int:
        sock = self._sock
        if self._state == OPEN and not sock.is_closing():  # uvloop raises on a closed socket
            sock.write(frame)
        return sock.get_write_buffer_size()

    def abort(self) -> None:
        if self._state == OPEN:
            self._state = CLOSING
        self._sock.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._state >= FAILED:
            return
        for opcode, payload in self._reader.feed(data):
            if opcode <= OPCODE_BINARY:
                self._message(payload)
            elif opcode == OPCODE_CLOSE:
                self._peer_closed(payload)
                return
            elif opcode == OPCODE_PING and self._state == OPEN:
                self._sock.write(ws_pong_frame(payload))
            elif opcode == OPCODE_PONG:
                self._pong()
        error = self._reader.error
        if error is not None:
            self._reader.error = None
            self._message(error)  # after the messages before it, as they are served in order

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = LOST
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        if self._task is None:
            self._endpoint.forget(self)

    # -- for subclasses ------------------------------------------------------------------------

    def _message(self, message: bytes | FrameError) -> None:
        """A whole data message from the client, or why reading stopped."""
        raise NotImplementedError

    def _pong(self) -> None:
        """The peer answered a ping frame (only unidirectional WebSocket sends them)."""

    def _task_ended(self) -> None:
        """Called by the subclass's task as it ends: a connection lost meanwhile leaves the endpoint."""
        self._task = None
        if self._state == LOST:
            self._endpoint.forget(self)

    def _failed(self, error: FrameError) -> None:
        """The client broke the protocol or a limit: its close frame, and nothing more is read."""
        self._send_close(error.code, error.reason)
        self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        self._state = max(self._state, FAILED)

    def _peer_closed(self, payload: bytes) -> None:
        """Answers the peer's close frame with its code (as Go's WebSocket library does), then ends
        the socket once that answer is written."""
        if self._state == OPEN:
            code = close_code_of(payload)
            self._sock.write(ws_close_frame(code, "") if code != CLOSE_NO_STATUS else _EMPTY_CLOSE)
        self._state = CLOSING
        self._sock.close()
        self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)

    def _send_close(self, code: int, reason: str) -> None:
        if self._state != OPEN:
            return
        self._state = CLOSING
        if self._sock.is_closing():
            return
        self._sock.write(ws_close_frame(code, reason))
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(self._endpoint.write_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        """A write timeout after our close frame: the socket ends, at once if the peer stopped
        reading (the close frame is still unwritten, the usual case of 3008 "slow"), as Centrifugo
        drops a socket whose write missed its deadline."""
        self._close_timer = None
        if self._sock.get_write_buffer_size() > 0:
            self._sock.abort()
        else:
            self._sock.close()


_EMPTY_CLOSE = bytes((0x80 | OPCODE_CLOSE, 0))


def start_task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """A task for a connection's coroutine, or None when it already ended: on Python 3.12+ it runs
    eagerly, so work that never awaits finishes without a loop pass."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        task = asyncio.Task(coro, loop=loop, eager_start=True)
    else:
        task = loop.create_task(coro)
    return None if task.done() else task


class _HandOverResponse(web.WebSocketResponse):
    """aiohttp's upgrade (handshake checks, the 101 answer) without its reader: the bytes that
    follow stay in aiohttp's buffer until :func:`hand_over` takes them."""

    def __init__(self, deflate: bool, **options: Any) -> None:
        super().__init__(**options)
        self._deflate = deflate

    def _handshake(self, request: web.BaseRequest) -> tuple[CIMultiDict[str], str | None, int, bool]:
        answer = super()._handshake(request)
        return negotiate_deflate(request, *answer) if self._deflate else answer

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: WebSocketWriter) -> None:
        self._ws_protocol = protocol


async def upgrade(
    request: web.Request, protocols: tuple[str, ...], compression: bool
) -> tuple[web.StreamResponse, str | None, bool]:
    """Answers the upgrade: the response for the handler to return, the negotiated subprotocol and
    whether permessage-deflate was negotiated."""
    upgraded = switching_protocols(request, protocols, compression)
    if upgraded is not None:
        response = HandedOver(upgraded.headers)
        await answer(request, response)
        return response, upgraded.subprotocol, upgraded.deflate
    # aiohttp answers what is not a well-formed upgrade (its 400s) and logs what it logs
    ws = _HandOverResponse(compression, protocols=protocols, compress=compression)
    await ws.prepare(request)
    return HandedOver(), ws.ws_protocol, bool(ws.compress)


def adopt(request: web.Request, endpoint: WebSocketEndpoint, connection: OwnWebSocket) -> None:
    """Makes ``connection`` (its Client set) the protocol of the request's socket and reads what
    aiohttp already received past the upgrade request."""
    assert request.transport is not None
    endpoint.live.add(connection)
    tail = hand_over(request.protocol, request.transport, connection)
    if tail:
        connection.data_received(tail)


def hand_over(handler: RequestHandler, sock: asyncio.Transport, connection: asyncio.Protocol) -> bytes:
    """Points ``sock`` at ``connection`` and makes aiohttp's ``handler`` forget it; returns the
    bytes aiohttp read past the upgrade request (the client's first frames, if any).

    aiohttp's connection_lost with no transport left closes nothing: it drops the connection from
    the server's set once the request's task ends, and that task ends as soon as the handler
    returns (the connection is not kept alive after an upgrade), releasing everything it held.
    """
    tail = handler._message_tail
    handler._message_tail = b""
    paused = handler._buffer_paused
    sock.set_protocol(connection)
    handler.transport = None
    handler.connection_lost(None)
    if paused:
        sock.resume_reading()
    return tail
