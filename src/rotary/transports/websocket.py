"""Bidirectional WebSocket transport on aiohttp, JSON or Protobuf.

aiohttp performs the handshake and reads frames; rotary writes its own server frames (unmasked, so
building them is trivial) straight to the socket's asyncio transport, which is what lets one prepared
frame serve thousands of connections. Compression is never negotiated for the same reason.
Protobuf is chosen by the `centrifuge-protobuf` subprotocol or `?cf_protocol=protobuf`
(https://centrifugal.dev/docs/transports/websocket).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.framing import ws_frame

log = logging.getLogger("rotary.transports.websocket")

SUBPROTOCOL_JSON = "centrifuge-json"
SUBPROTOCOL_PROTOBUF = "centrifuge-protobuf"
DEFAULT_WRITE_TIMEOUT = 1.0
"""Seconds a close frame may wait to be written (Centrifugo's `websocket.write_timeout` default)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OriginCheck = Callable[[web.Request], bool]


class WebSocketTransport:
    """Writes to one upgraded connection; the read side stays in the request handler."""

    name = "websocket"
    unidirectional = False

    def __init__(
        self,
        ws: web.WebSocketResponse,
        sock: asyncio.WriteTransport,
        protocol: ProtocolType,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    ) -> None:
        self.protocol = protocol
        self._binary = protocol is ProtocolType.PROTOBUF
        self.framing = "ws-binary" if self._binary else "ws-text"
        self._ws = ws
        self._sock = sock
        self._write_timeout = write_timeout
        self._closing: asyncio.Task[bool] | None = None

    def frame(self, payload: bytes) -> bytes:
        return ws_frame(payload, self._binary)

    def write(self, payload: bytes) -> None:
        if self._closing is None and not self._sock.is_closing():
            self._sock.write(ws_frame(payload, self._binary))

    def write_prepared(self, frame: bytes) -> None:
        # A peer may be gone before its read loop notices; uvloop raises on writes to a closed
        # socket, which would abort the fan-out loop for every later subscriber.
        if self._closing is None and not self._sock.is_closing():
            self._sock.write(frame)

    def buffered_bytes(self) -> int:
        return self._sock.get_write_buffer_size()

    def close(self, disconnect: codes.Disconnect) -> None:
        if self._closing is not None:
            return
        reason = disconnect.reason.encode()[:123]
        loop = asyncio.get_running_loop()
        self._closing = loop.create_task(self._ws.close(code=disconnect.code, message=reason))
        # One handle per closing connection, gone as soon as the close completes: a churn of
        # connections must not leave a timer behind each one for the whole write timeout.
        drop = loop.call_later(self._write_timeout, self._drop_if_stalled)
        self._closing.add_done_callback(lambda _: drop.cancel())

    def abort(self) -> None:
        self._sock.abort()

    def _drop_if_stalled(self) -> None:
        """Aborts a socket whose close frame is still unwritten after the write timeout.

        A peer that stopped reading (the usual reason for 3008 "slow") never takes the close frame,
        and the transport would then hold its buffered bytes and this connection's handler forever;
        Centrifugo likewise drops a socket once a write misses its deadline.
        """
        if self._sock.get_write_buffer_size() > 0:
            self._sock.abort()

    async def wait_closed(self) -> None:
        if self._closing is not None:
            try:
                await self._closing
            except (ConnectionError, asyncio.CancelledError):
                pass


def _protocol_of(request: web.Request, ws: web.WebSocketResponse) -> ProtocolType:
    if ws.ws_protocol == SUBPROTOCOL_PROTOBUF:
        return ProtocolType.PROTOBUF
    if "protobuf" in (request.query.get("cf_protocol"), request.query.get("format")):
        return ProtocolType.PROTOBUF
    return ProtocolType.JSON


def websocket_handler(
    node: Node,
    *,
    message_size_limit: int = 65536,
    check_origin: OriginCheck | None = None,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
) -> Handler:
    """An aiohttp handler serving the bidirectional client protocol for ``node``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if check_origin is not None and not check_origin(request):
            return web.Response(status=403, text="Forbidden")
        ws = web.WebSocketResponse(
            protocols=(SUBPROTOCOL_JSON, SUBPROTOCOL_PROTOBUF),
            compress=False,
            max_msg_size=message_size_limit,
            autoclose=True,
            autoping=True,
        )
        await ws.prepare(request)
        sock = request.transport
        if sock is None:
            return ws
        transport = WebSocketTransport(ws, sock, _protocol_of(request, ws), write_timeout)
        headers = {k.lower(): v for k, v in request.headers.items()}
        client = Client(node, transport, headers, request.remote or "")
        try:
            await _read_loop(ws, client)
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)
            await transport.wait_closed()
        return ws

    return handle


async def _read_loop(ws: web.WebSocketResponse, client: Client) -> None:
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await client.handle_frame(msg.data.encode())
        elif msg.type is WSMsgType.BINARY:
            await client.handle_frame(msg.data)
        else:
            break
        if client.closed:
            break
