"""Unidirectional WebSocket: a plain WebSocket client gets JSON pushes and never sends commands.

The connect request comes in the `cf_connect` query parameter or as the first message (a malformed
one closes with 3501); after it every message from the client is ignored. The server sends a
`connect` push, then publications, joins, leaves, `{}` pings, and a `disconnect` push before the close
frame; it also sends WebSocket ping frames and drops a peer that does not answer one within
`client.pong_timeout`, as Centrifugo does. Each push is its own text frame unless
`uni_websocket.join_push_messages` joins a batch with newlines. The ping frame and pong deadlines wait
on the node's shared deadline ticks (rotary.node.deadlines), so an idle connection holds no loop timer
of its own.
See https://centrifugal.dev/docs/transports/uni_websocket.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from rotary.node.client import Client
from rotary.node.deadlines import Deadlines
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType
from rotary.protocol.deflate import MessageDeflater
from rotary.protocol.framing import ws_frame, ws_ping_frame
from rotary.protocol.uni_framing import messages_of
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
    WebSocketTransport,
    read_limits,
    websocket_response,
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


class UniWebSocketTransport(WebSocketTransport):
    """The bidirectional WebSocket writer, with one frame per push and a closing disconnect push."""

    name = "uni_websocket"
    unidirectional = True

    def __init__(
        self,
        ws: web.WebSocketResponse,
        sock: asyncio.WriteTransport,
        options: UniWebSocketOptions,
        deadlines: Deadlines,
    ):
        deflater = options.compression if ws.compress else None
        super().__init__(ws, sock, ProtocolType.JSON, options.write_timeout, deflater)
        self.framing = "ws-text" if options.join_push_messages else "ws-text-per-push"
        if deflater is not None:
            self.framing += "-" + deflater.framing_suffix
        self._options = options
        self.push_disconnect = not options.disable_disconnect_push
        """Cleared for a connection refused before it connected, which gets only the close frame."""
        self._loop = asyncio.get_running_loop()
        self._ended = False
        """Closed without a closing handshake (`disable_closing_handshake`)."""
        self._deadlines = deadlines
        self._tick: int | None = None
        """The tick of the node's deadlines this connection waits in, if any."""
        self._next_ping = self._loop.time() + options.ping_interval
        self._pong_by: float | None = None
        """When the peer must have answered the last ping frame; None when no answer is awaited."""
        self._arm()

    def frame(self, payload: bytes) -> bytes:
        """One text frame per push, as Centrifugo sends them unless `join_push_messages`, all in one
        write: the fan-out joins a pass's publications into one batch, which must not reach the client
        as one message."""
        frame = super().frame  # compresses each message when the connection negotiated it
        if self._options.join_push_messages:
            return frame(payload)
        return b"".join([frame(message) for message in messages_of(payload)])

    def write(self, payload: bytes) -> None:
        self.write_prepared(self.frame(payload))

    def close(self, disconnect: codes.Disconnect) -> int:
        if self._closing is not None or self._ended:
            return 0
        self._leave_tick()
        pushed = b""
        if self.push_disconnect and sends_disconnect_push(disconnect):
            pushed = disconnect_push(disconnect)
            self.write_prepared(ws_frame(pushed, False))
        if self._options.disable_closing_handshake:
            self._ended = True
            self._sock.close()  # flushes what is buffered, then closes without a close frame
            drop_if_stalled(self._sock, self._options.write_timeout)
            return len(pushed)
        super().close(disconnect)
        return len(pushed)

    def abort(self) -> None:
        """Ends the connection with no goodbye (no disconnect push, no close frame)."""
        self._leave_tick()
        self._sock.abort()

    def pong_received(self) -> None:
        if self._pong_by is not None:
            self._pong_by = None
            if self._tick is not None:  # not once the connection is closing
                self._arm()

    def deadline_due(self) -> None:
        """The node's deadlines call this at the tick of the next ping frame or pong deadline."""
        self._tick = None
        if self._closing is not None or self._ended or self._sock.is_closing():
            return
        now = self._loop.time()
        if self._pong_by is not None and now >= self._pong_by:
            # No pong in time: the peer is gone; dropping the socket ends the handler's read loop.
            self._sock.abort()
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
        tick = self._deadlines.tick_of(due)
        if tick == self._tick:
            return
        self._leave_tick()
        self._tick = tick
        self._deadlines.add(self, tick)

    def _leave_tick(self) -> None:
        if self._tick is not None:
            self._deadlines.remove(self, self._tick)
            self._tick = None

    async def wait_closed(self) -> None:
        self._leave_tick()
        await super().wait_closed()


def uni_websocket_handler(
    node: Node,
    options: UniWebSocketOptions,
    *,
    check_origin: OriginCheck | None = None,
) -> Handler:
    """An aiohttp handler serving unidirectional WebSocket connections for ``node``."""
    wire_limit, inflated_limit = read_limits(
        options.message_size_limit, options.decompressed_message_size_limit
    )

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
        ws = websocket_response(options.compression, wire_limit, inflated_limit, (), False)
        await ws.prepare(request)
        sock = request.transport
        if sock is None:
            return ws
        transport = UniWebSocketTransport(ws, sock, options, node.deadlines)
        headers = {k.lower(): v for k, v in request.headers.items()}
        client = Client(node, transport, headers, request.remote or "")
        try:
            if connect_request is None:
                connect_request = await _first_message(ws, transport, client)
            if connect_request is not None:
                failure = await client.connect_unidirectional(connect_request)
                if failure is not None:
                    client.close(client.unidirectional_disconnect(failure))
                await _read_until_closed(ws, transport, client)
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)
            await transport.wait_closed()
        return ws

    return handle


async def _first_message(
    ws: web.WebSocketResponse, transport: UniWebSocketTransport, client: Client
) -> pb.ConnectRequest | None:
    """The connect request sent as the first message; None when the connection ended first."""
    async for msg in ws:
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            try:
                return parse_connect_request(msg.data)
            except BadConnectRequest as exc:
                log.info("error unmarshalling connect request: %s", exc)
                transport.push_disconnect = False
                client.close(codes.DISCONNECT_BAD_REQUEST)
                return None
        if not await _control(ws, transport, msg.type, msg.data):
            return None
        if client.closed:
            return None
    return None


async def _read_until_closed(
    ws: web.WebSocketResponse, transport: UniWebSocketTransport, client: Client
) -> None:
    """Answers pings, notes pongs and ignores data until the peer or the server ends the connection."""
    async for msg in ws:
        if client.closed:
            return
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        if not await _control(ws, transport, msg.type, msg.data):
            return


async def _control(
    ws: web.WebSocketResponse, transport: UniWebSocketTransport, kind: WSMsgType, data: object
) -> bool:
    """Handles a ping or pong; False for anything that ends the connection."""
    if kind is WSMsgType.PING:
        await ws.pong(data if isinstance(data, bytes) else b"")
        return True
    if kind is WSMsgType.PONG:
        transport.pong_received()
        return True
    return False
