"""The bidirectional WebSocket served by a protocol of rotary's own once aiohttp has upgraded it.

aiohttp still receives the upgrade request, so routing and every middleware (admission and
``connection_rate_limit``, the HTTP read deadlines, the metrics of HTTP handlers) and the origin
check apply as to any request. The 101 answer to a well-formed upgrade is written by
transports/ws_handshake.py (aiohttp's response machinery cost a tenth of a connect + subscribe);
aiohttp's handshake still answers any other. Then the socket leaves aiohttp:
:func:`hand_over` points the asyncio transport at a :class:`WebSocketConnection` and makes aiohttp
forget the connection, so the request, its handler task, the WebSocketResponse and aiohttp's
per-connection protocol are all released. An idle connection is then one protocol object, its frame
reader and its Client, with no task; a task exists only while a command awaits (see
ARCHITECTURE.md, decision 27). The standalone server uses it; the aiohttp mount keeps the aiohttp
handler of transports/websocket.py, whose hooks may see the host's request.
Wire behaviour is that handler's (https://centrifugal.dev/docs/transports/websocket).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from typing import Any

from aiohttp import web
from aiohttp.http_websocket import WebSocketWriter
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.deflate import MessageDeflater
from rotary.protocol.framing import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    ws_close_frame,
    ws_pong_frame,
)
from rotary.protocol.ws_reader import (
    CLOSE_NO_STATUS,
    FrameError,
    MessageReader,
    ReadLimits,
    UnreadableMessage,
    close_code_of,
)
from rotary.transports.websocket import (
    DEFAULT_WRITE_TIMEOUT,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_PROTOBUF,
    Handler,
    OriginCheck,
    data_frame,
    negotiate_deflate,
    protocol_of,
    read_limits,
)
from rotary.transports.ws_handshake import HandedOver, answer, switching_protocols

log = logging.getLogger("rotary.transports.websocket")

_OPEN = 0
_CLOSING = 1
"""Our close frame went out: data is ignored until the peer's close frame or the timer ends the socket."""
_FAILED = 2
"""The peer broke the protocol or a limit: nothing it sends is read any more."""
_LOST = 3
"""The socket is gone."""


class WebSocketEndpoint:
    """What every connection of one endpoint shares, and the connections still open, so that the
    application's shutdown can end them (aiohttp no longer knows them)."""

    def __init__(self, node: Node, limits: ReadLimits, write_timeout: float) -> None:
        self.node = node
        self.limits = limits
        self.write_timeout = write_timeout
        self.live: set[WebSocketConnection] = set()
        self._drained: asyncio.Future[None] | None = None

    def forget(self, connection: WebSocketConnection) -> None:
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


class WebSocketConnection(asyncio.Protocol):
    """One upgraded connection: the asyncio protocol reading it and the node's Transport writing it."""

    name = "websocket"
    unidirectional = False
    __slots__ = (
        "_binary",
        "_close_timer",
        "_deflater",
        "_endpoint",
        "_pending",
        "_reader",
        "_sock",
        "_state",
        "_task",
        "client",
        "framing",
        "protocol",
    )

    def __init__(
        self,
        endpoint: WebSocketEndpoint,
        sock: asyncio.Transport,
        protocol: ProtocolType,
        deflater: MessageDeflater | None,
    ) -> None:
        self.protocol = protocol
        self._binary = protocol is ProtocolType.PROTOBUF
        framing = "ws-binary" if self._binary else "ws-text"
        self.framing = framing if deflater is None else f"{framing}-{deflater.framing_suffix}"
        self._deflater = deflater
        self._endpoint = endpoint
        self._sock = sock
        self._reader = MessageReader(endpoint.limits, deflater is not None)
        self._state = _OPEN
        self._task: asyncio.Task[None] | None = None
        self._pending: deque[bytes | FrameError] | None = None
        """Messages read while a command awaits, perhaps ending with why reading stopped; reading is
        paused until they are served."""
        self._close_timer: asyncio.TimerHandle | None = None
        self.client: Client

    # -- the node's Transport ------------------------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        return data_frame(payload, self._binary, self._deflater)

    def write(self, payload: bytes) -> None:
        if self._state == _OPEN and not self._sock.is_closing():
            self._sock.write(self.frame(payload))

    def write_prepared(self, frame: bytes) -> int:
        sock = self._sock
        if self._state == _OPEN and not sock.is_closing():  # uvloop raises on a closed socket
            sock.write(frame)
        return sock.get_write_buffer_size()

    def close(self, disconnect: codes.Disconnect) -> int:
        """Says goodbye with a close frame, never a disconnect push (returns 0)."""
        self._send_close(disconnect.code, disconnect.reason)
        return 0

    def abort(self) -> None:
        if self._state == _OPEN:
            self._state = _CLOSING
        self._sock.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._state >= _FAILED:
            return
        for opcode, payload in self._reader.feed(data):
            if opcode <= OPCODE_BINARY:
                self._message(payload)
            elif opcode == OPCODE_CLOSE:
                self._peer_closed(payload)
                return
            elif opcode == OPCODE_PING and self._state == _OPEN:
                self._sock.write(ws_pong_frame(payload))
        error = self._reader.error
        if error is not None:
            self._reader.error = None
            self._message(error)  # after the messages before it, as they are served in order

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _LOST
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        if self._task is None:
            self._endpoint.forget(self)

    # -- reading -------------------------------------------------------------------------------

    def _message(self, message: bytes | FrameError) -> None:
        if self._state != _OPEN:
            return
        if self._task is None:
            if isinstance(message, FrameError):
                self._failed(message)
            else:
                task = _start(self._serve(message))
                if not task.done():  # an eager task (3.12+) may have served it all already
                    self._task = task
            return
        if self._pending is None:
            self._pending = deque()
            self._sock.pause_reading()
        self._pending.append(message)

    async def _serve(self, message: bytes) -> None:
        """Runs the commands of ``message`` and of those read meanwhile, one message at a time."""
        client = self.client
        try:
            while True:
                await client.handle_frame(message)
                pending = self._pending
                if client.closed or not pending:
                    return
                following = pending.popleft()
                if isinstance(following, FrameError):
                    self._failed(following)
                    return
                message = following
        except Exception:
            log.exception("error serving client %s", client.id, extra={"client": client.id})
            client.close(codes.DISCONNECT_SERVER_ERROR)
        finally:
            self._task = None
            if self._state == _LOST:
                self._endpoint.forget(self)
            elif self._pending is not None:
                self._pending = None
                self._sock.resume_reading()

    def _failed(self, error: FrameError) -> None:
        """The client broke the protocol or a limit: its close frame, and nothing more is read."""
        if isinstance(error, UnreadableMessage):
            self.client.close(codes.DISCONNECT_BAD_REQUEST)
        else:
            self._send_close(error.code, error.reason)
            self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        self._state = max(self._state, _FAILED)

    def _peer_closed(self, payload: bytes) -> None:
        """Answers the peer's close frame with its code (as Go's WebSocket library does), then ends
        the socket once that answer is written."""
        if self._state == _OPEN:
            code = close_code_of(payload)
            self._sock.write(ws_close_frame(code, "") if code != CLOSE_NO_STATUS else _EMPTY_CLOSE)
        self._state = _CLOSING
        self._sock.close()
        self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)

    def _send_close(self, code: int, reason: str) -> None:
        if self._state != _OPEN:
            return
        self._state = _CLOSING
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


def _start(coro: Any) -> asyncio.Task[None]:
    """A task for one command's coroutine; on Python 3.12+ it runs eagerly, so a command that
    never awaits finishes without a loop pass."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return loop.create_task(coro)


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


def own_websocket_handler(
    node: Node,
    endpoint: WebSocketEndpoint,
    *,
    check_origin: OriginCheck | None = None,
    compression: MessageDeflater | None = None,
) -> Handler:
    """An aiohttp handler that upgrades the bidirectional client protocol and hands the socket to a
    :class:`WebSocketConnection` of ``endpoint``."""
    protocols = (SUBPROTOCOL_JSON, SUBPROTOCOL_PROTOBUF)

    async def handle(request: web.Request) -> web.StreamResponse:
        if check_origin is not None and not check_origin(request):
            return web.Response(status=403, text="Forbidden")
        upgrade = switching_protocols(request, protocols, compression is not None)
        if upgrade is not None:
            await answer(request, upgrade)
            response, subprotocol, deflated = upgrade.response, upgrade.subprotocol, upgrade.deflate
        else:  # aiohttp answers what is not a well-formed upgrade (its 400s) and logs what it logs
            deflate = compression is not None
            ws = _HandOverResponse(deflate, protocols=protocols, compress=deflate)
            await ws.prepare(request)
            response, subprotocol, deflated = HandedOver(), ws.ws_protocol, bool(ws.compress)
        sock = request.transport
        if sock is None or sock.is_closing():
            return response
        connection = WebSocketConnection(
            endpoint, sock, protocol_of(request, subprotocol), compression if deflated else None
        )
        headers = {k.lower(): v for k, v in request.headers.items()}
        connection.client = Client(node, connection, headers, request.remote or "")
        endpoint.live.add(connection)
        tail = hand_over(request.protocol, sock, connection)
        if tail:
            connection.data_received(tail)
        return response

    return handle


def websocket_endpoint(
    node: Node, message_size_limit: int, decompressed_message_size_limit: int, write_timeout: float
) -> WebSocketEndpoint:
    """The endpoint of the given Centrifugo ``websocket`` settings (0s meaning their defaults)."""
    wire, inflated = read_limits(message_size_limit, decompressed_message_size_limit)
    return WebSocketEndpoint(node, ReadLimits(wire, inflated), write_timeout or DEFAULT_WRITE_TIMEOUT)
