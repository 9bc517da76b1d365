"""Unidirectional WebSocket: a plain WebSocket client gets JSON pushes and never sends commands.

The connect request comes in the `cf_connect` query parameter or as the first message (a malformed
one closes with 3501); after it every message from the client is ignored. The server sends a
`connect` push, then publications, joins, leaves, `{}` pings, and a `disconnect` push before the close
frame; it also sends WebSocket ping frames and drops a peer that does not answer one within
`client.pong_timeout`, as Centrifugo does. Each push is its own text frame unless
`uni_websocket.join_push_messages` joins a batch with newlines. The ping frame and pong deadlines wait
on the node's shared deadline ticks (rotary.node.deadlines), so an idle connection holds no loop timer
of its own. After its upgrade the socket leaves aiohttp, as the bidirectional endpoint's does
(transports/ws_protocol.py): its frames are read by rotary's reader, so a broken frame ends the
connection with the close code and reason Centrifugo's Go reader gives it (the same reader serves
Centrifugo's two WebSocket endpoints), and an idle connection holds no task.
See https://centrifugal.dev/docs/transports/uni_websocket.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType
from rotary.protocol.deflate import MessageDeflater
from rotary.protocol.framing import ws_frame, ws_ping_frame
from rotary.protocol.uni_framing import messages_of
from rotary.protocol.ws_reader import FrameError, ReadLimits, UnreadableMessage
from rotary.transports.stalled import drop_if_stalled
from rotary.transports.uni_connect import (
    CONNECT_PARAM,
    BadConnectRequest,
    disconnect_push,
    parse_connect_request,
    sends_disconnect_push,
)
from rotary.transports.websocket import (
    DEFAULT_WRITE_TIMEOUT,
    Handler,
    OriginCheck,
    data_frame,
    read_limits,
)
from rotary.transports.ws_protocol import (
    FAILED,
    OPEN,
    OwnWebSocket,
    WebSocketEndpoint,
    adopt,
    start_task,
    upgrade,
)

log = logging.getLogger("rotary.transports.uni_websocket")

DEFAULT_FRAME_PING_INTERVAL = 25.0
DEFAULT_FRAME_PONG_TIMEOUT = 10.0
"""Centrifugo's WebSocket ping frame timing when client.ping_interval / pong_timeout are zero."""


@dataclass(frozen=True, slots=True)
class UniWebSocketOptions:
    """The `uni_websocket` section and the client ping timing it borrows."""

    message_size_limit: int = 65536
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    join_push_messages: bool = False
    disable_closing_handshake: bool = False
    disable_disconnect_push: bool = False
    ping_interval: float = DEFAULT_FRAME_PING_INTERVAL
    pong_timeout: float = DEFAULT_FRAME_PONG_TIMEOUT
    compression: MessageDeflater | None = None
    """One deflater shared by every connection when `uni_websocket.compression` is on."""
    decompressed_message_size_limit: int = 0


class UniWebSocketConnection(OwnWebSocket):
    """One upgraded unidirectional connection: the asyncio protocol reading it (only its connect
    request, pings and pongs matter) and the node's Transport writing it, one frame per push and a
    disconnect push before the close frame."""

    name = "uni_websocket"
    unidirectional = True
    protocol = ProtocolType.JSON
    __slots__ = (
        "_awaiting_request",
        "_deflater",
        "_loop",
        "_next_ping",
        "_options",
        "_pong_by",
        "_tick",
        "framing",
        "push_disconnect",
    )

    def __init__(
        self,
        endpoint: WebSocketEndpoint,
        sock: asyncio.Transport,
        options: UniWebSocketOptions,
        deflater: MessageDeflater | None,
        awaiting_request: bool,
    ) -> None:
        super().__init__(endpoint, sock, deflater is not None)
        self._deflater = deflater
        self.framing = "ws-text" if options.join_push_messages else "ws-text-per-push"
        if deflater is not None:
            self.framing += "-" + deflater.framing_suffix
        self._options = options
        self._awaiting_request = awaiting_request
        """The connect request is to come as the first message (no `cf_connect`)."""
        self.push_disconnect = not options.disable_disconnect_push
        """Cleared for a connection refused before it connected, which gets only the close frame."""
        self._loop = asyncio.get_running_loop()
        self._tick: int | None = None
        """The tick of the node's deadlines this connection waits in, if any."""
        self._next_ping = self._loop.time() + options.ping_interval
        self._pong_by: float | None = None
        """When the peer must have answered the last ping frame; None when no answer is awaited."""
        self._arm()

    def connect(self, request: pb.ConnectRequest) -> None:
        """Runs the client's connect; its result goes out as a `connect` push or a disconnect."""
        self._task = start_task(self._connect(request))

    async def _connect(self, request: pb.ConnectRequest) -> None:
        client = self.client
        try:
            failure = await client.connect_unidirectional(request)
            if failure is not None:
                client.close(client.unidirectional_disconnect(failure))
        finally:
            self._task_ended()

    # -- the node's Transport ------------------------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        """One text frame per push, as Centrifugo sends them unless `join_push_messages`, all in one
        write: the fan-out joins a pass's publications into one batch, which must not reach the client
        as one message. Each message is compressed when the connection negotiated it."""
        if self._options.join_push_messages:
            return data_frame(payload, False, self._deflater)
        return b"".join([data_frame(message, False, self._deflater) for message in messages_of(payload)])

    def write(self, payload: bytes) -> None:
        self.write_prepared(self.frame(payload))

    def close(self, disconnect: codes.Disconnect) -> int:
        """The disconnect push (unless disabled or pointless), then the close frame; with
        `disable_closing_handshake`, or when the peer went away (3000), the socket just ends, as
        Centrifugo ends it."""
        if self._state != OPEN:
            return 0
        self._leave_tick()
        pushed = b""
        if self.push_disconnect and sends_disconnect_push(disconnect):
            pushed = disconnect_push(disconnect)
            self.write_prepared(ws_frame(pushed, False))
        if self._options.disable_closing_handshake or disconnect == codes.DISCONNECT_CONNECTION_CLOSED:
            self._state = FAILED  # nothing more is read
            self._sock.close()  # flushes what is buffered, then closes without a close frame
            drop_if_stalled(self._sock, self._options.write_timeout)
        else:
            self._send_close(disconnect.code, disconnect.reason)
        return len(pushed)

    def _send_close(self, code: int, reason: str) -> None:
        """Counted as Centrifugo's uni_websocket handler counts the first close frame it sends:
        the disconnect's, 3501 for a malformed connect request, or a frame error's (1002, 1009)."""
        metrics = self._endpoint.node.metrics
        if self._state == OPEN and metrics is not None:
            metrics.outgoing_close(self.name, code)
        super()._send_close(code, reason)

    def abort(self) -> None:
        """Ends the connection with no goodbye (no disconnect push, no close frame)."""
        self._leave_tick()
        super().abort()

    # -- reading -------------------------------------------------------------------------------

    def _message(self, message: bytes | FrameError) -> None:
        """The first message is the connect request unless `cf_connect` brought it; every later
        one is ignored."""
        if self._state != OPEN:
            return
        if isinstance(message, UnreadableMessage):
            # Centrifugo's handler gets a read error with no close frame written, and ends the socket.
            self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        elif isinstance(message, FrameError):
            self._failed(message)
        elif self._awaiting_request:
            self._awaiting_request = False
            try:
                request = parse_connect_request(message)
            except BadConnectRequest as exc:
                log.info("error unmarshalling connect request: %s", exc)
                self.push_disconnect = False
                self.client.close(codes.DISCONNECT_BAD_REQUEST)
                return
            self.connect(request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave_tick()
        super().connection_lost(exc)

    # -- ping frames and the pong deadline -----------------------------------------------------

    def _pong(self) -> None:
        if self._pong_by is not None:
            self._pong_by = None
            if self._tick is not None:  # not once the connection is closing
                self._arm()

    def deadline_due(self) -> None:
        """The node's deadlines call this at the tick of the next ping frame or pong deadline."""
        self._tick = None
        if self._state != OPEN or self._sock.is_closing():
            return
        now = self._loop.time()
        if self._pong_by is not None and now >= self._pong_by:
            self._sock.abort()  # no pong in time: the peer is gone
            return
        if now >= self._next_ping:
            self._sock.write(ws_ping_frame())
            if self._pong_by is None:
                self._pong_by = now + self._options.pong_timeout
            self._next_ping = now + self._options.ping_interval
        self._arm()

    def _arm(self) -> None:
        """Waits in the tick of the earlier of the next ping frame and the pong deadline."""
        due = self._next_ping if self._pong_by is None else min(self._next_ping, self._pong_by)
        deadlines = self._endpoint.node.deadlines
        tick = deadlines.tick_of(due)
        if tick == self._tick:
            return
        self._leave_tick()
        self._tick = tick
        deadlines.add(self, tick)

    def _leave_tick(self) -> None:
        if self._tick is not None:
            self._endpoint.node.deadlines.remove(self, self._tick)
            self._tick = None


def uni_websocket_endpoint(node: Node, options: UniWebSocketOptions) -> WebSocketEndpoint:
    """The endpoint of the `uni_websocket` settings: its read limits and write timeout."""
    wire, inflated = read_limits(options.message_size_limit, options.decompressed_message_size_limit)
    return WebSocketEndpoint(node, ReadLimits(wire, inflated), options.write_timeout or DEFAULT_WRITE_TIMEOUT)


def uni_websocket_handler(
    endpoint: WebSocketEndpoint,
    options: UniWebSocketOptions,
    *,
    check_origin: OriginCheck | None = None,
) -> Handler:
    """An aiohttp handler that upgrades unidirectional WebSocket connections and hands each socket to
    a :class:`UniWebSocketConnection` of ``endpoint``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if check_origin is not None and not check_origin(request):
            return web.Response(status=403, text="Forbidden")
        connect_request: pb.ConnectRequest | None = None
        if param := request.query.get(CONNECT_PARAM):
            try:
                connect_request = parse_connect_request(param)
            except BadConnectRequest as exc:
                log.info("error unmarshalling connect request: %s", exc)
                return web.Response(status=400, text="invalid connect request\n")
        response, _, deflated = await upgrade(request, (), options.compression is not None)
        sock = request.transport
        if sock is None or sock.is_closing():
            return response
        deflater = options.compression if deflated else None
        connection = UniWebSocketConnection(endpoint, sock, options, deflater, connect_request is None)
        headers = {k.lower(): v for k, v in request.headers.items()}
        client = Client(endpoint.node, connection, headers, request.remote or "")
        connection.client = client
        adopt(request, endpoint, connection)
        if connect_request is not None and not client.closed:
            connection.connect(connect_request)
        return response

    return handle
