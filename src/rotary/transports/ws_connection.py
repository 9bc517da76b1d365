"""The bidirectional WebSocket served by a protocol of rotary's own once aiohttp has upgraded it.

The standalone server's front door (server/front_door.py) reads most upgrade requests itself and
hands the socket over with :func:`serve_upgraded`. The rest reach aiohttp, so routing and every
middleware (admission and ``connection_rate_limit``, the HTTP read deadlines, the metrics of HTTP
handlers) and the origin check apply as to any request. The 101 answer to a well-formed upgrade
is written by transports/ws_handshake.py (aiohttp's response machinery cost a tenth of a connect + subscribe);
aiohttp's handshake still answers any other. Then the socket leaves aiohttp:
:func:`rotary.transports.ws_protocol.hand_over` points the asyncio transport at a
:class:`WebSocketConnection` and makes aiohttp forget the connection, so the request, its handler
task, the WebSocketResponse and aiohttp's per-connection protocol are all released (frame reading,
control frames and the close are shared with uni_websocket in transports/ws_protocol.py).
An idle connection is then one protocol object, its frame reader and its Client, with no task; a
task exists only while a command awaits (see ARCHITECTURE.md, decision 27). The standalone
server uses it; the aiohttp mount keeps the aiohttp handler of transports/websocket.py, whose hooks
may see the host's request.
Wire behaviour is that handler's (https://centrifugal.dev/docs/transports/websocket).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from aiohttp import web

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.deflate import MessageDeflater
from rotary.protocol.ws_reader import FrameError, ReadLimits, UnreadableMessage
from rotary.transports.websocket import (
    DEFAULT_WRITE_TIMEOUT,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_PROTOBUF,
    Handler,
    OriginCheck,
    data_frame,
    protocol_of,
    read_limits,
)
from rotary.transports.ws_protocol import (
    FAILED,
    LOST,
    OPEN,
    OwnWebSocket,
    WebSocketEndpoint,
    adopt,
    start_task,
    upgrade,
)

log = logging.getLogger("rotary.transports.websocket")

_PROTOBUF = ProtocolType.PROTOBUF
"""Bound once: on Python 3.11 an Enum class attribute costs about 850 instructions."""


class WebSocketConnection(OwnWebSocket):
    """One upgraded connection: the asyncio protocol reading it and the node's Transport writing it."""

    name = "websocket"
    unidirectional = False
    __slots__ = ("_binary", "_deflater", "_pending", "framing", "protocol")

    def __init__(
        self,
        endpoint: WebSocketEndpoint,
        sock: asyncio.Transport,
        protocol: ProtocolType,
        deflater: MessageDeflater | None,
    ) -> None:
        super().__init__(endpoint, sock, deflater is not None)
        self.protocol = protocol
        self._binary = protocol is _PROTOBUF
        framing = "ws-binary" if self._binary else "ws-text"
        self.framing = framing if deflater is None else f"{framing}-{deflater.framing_suffix}"
        self._deflater = deflater
        self._pending: deque[bytes | FrameError] | None = None
        """Messages read while a command awaits, perhaps ending with why reading stopped; reading is
        paused until they are served."""

    # -- the node's Transport ------------------------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        return data_frame(payload, self._binary, self._deflater)

    def write(self, payload: bytes) -> None:
        if self._state == OPEN and not self._sock.is_closing():
            self._sock.write(self.frame(payload))

    def close(self, disconnect: codes.Disconnect) -> int:
        """Says goodbye with a close frame, never a disconnect push (returns 0)."""
        self._send_close(disconnect.code, disconnect.reason)
        return 0

    # -- reading -------------------------------------------------------------------------------

    def _message(self, message: bytes | FrameError) -> None:
        if self._state != OPEN:
            return
        if self._task is None:
            if isinstance(message, FrameError):
                self._failed(message)
            else:
                self._task = start_task(self._serve(message))
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
            self._task_ended()
            if self._state != LOST and self._pending is not None:
                self._pending = None
                self._sock.resume_reading()

    def _failed(self, error: FrameError) -> None:
        """A message that does not inflate is a bad request (3501), as Centrifugo's command decoder
        answers it; any other error closes with its own code, counted as an outgoing close."""
        if isinstance(error, UnreadableMessage):
            self.client.close(codes.DISCONNECT_BAD_REQUEST)
            self._state = max(self._state, FAILED)
            return
        # The client's close is not the server's disconnect, so server_disconnect does not count
        # this close frame; Centrifugo's WebSocket handler counts its reader's close frames too.
        metrics = self._endpoint.node.metrics
        if metrics is not None and self._state == OPEN:
            metrics.outgoing_close(self.name, error.code)
        super()._failed(error)


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
        response, subprotocol, deflated = await upgrade(request, protocols, compression is not None)
        sock = request.transport
        if sock is None or sock.is_closing():
            return response
        connection = WebSocketConnection(
            endpoint, sock, protocol_of(request, subprotocol), compression if deflated else None
        )
        headers = {k.lower(): v for k, v in request.headers.items()}
        connection.client = Client(node, connection, headers, request.remote or "")
        adopt(request, endpoint, connection)
        return response

    return handle


def serve_upgraded(
    node: Node,
    endpoint: WebSocketEndpoint,
    sock: asyncio.Transport,
    protocol: ProtocolType,
    deflater: MessageDeflater | None,
    headers: dict[str, str],
    remote: str,
    tail: bytes,
) -> None:
    """Serves ``sock``, whose upgrade request was read and answered outside aiohttp (the standalone
    server's front door, server/front_door.py), as a connection of ``endpoint``; ``tail`` is what
    came after the request (the client's first frames, if any)."""
    connection = WebSocketConnection(endpoint, sock, protocol, deflater)
    connection.client = Client(node, connection, headers, remote)
    endpoint.live.add(connection)
    sock.set_protocol(connection)
    if tail:
        connection.data_received(tail)


def websocket_endpoint(
    node: Node, message_size_limit: int, decompressed_message_size_limit: int, write_timeout: float
) -> WebSocketEndpoint:
    """The endpoint of the given Centrifugo ``websocket`` settings (0s meaning their defaults)."""
    wire, inflated = read_limits(message_size_limit, decompressed_message_size_limit)
    return WebSocketEndpoint(node, ReadLimits(wire, inflated), write_timeout or DEFAULT_WRITE_TIMEOUT)
