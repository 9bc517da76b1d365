"""Bidirectional WebSocket transport on aiohttp, JSON or Protobuf.

aiohttp performs the handshake and reads frames; rotary writes its own server frames (unmasked, so
building them is trivial) straight to the socket's asyncio transport, which is what lets one prepared
frame serve thousands of connections. With `websocket.compression` on, permessage-deflate is
negotiated without context takeover, so a compressed frame is shared the same way by every
connection that negotiated it (see rotary.protocol.deflate); aiohttp inflates client frames, bounded
by the decompressed size limit.
Protobuf is chosen by the `centrifuge-protobuf` subprotocol or `?cf_protocol=protobuf`
(https://centrifugal.dev/docs/transports/websocket).
This handler serves the aiohttp mount, and the standalone server with
``ROTARY_WEBSOCKET_SERVER=aiohttp``; by default the standalone server hands the upgraded socket to
rotary's own protocol (transports/ws_connection.py), which shares the negotiation and limits below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, hdrs, web
from aiohttp._websocket.reader_py import WebSocketDataQueue
from aiohttp._websocket.reader_py import WebSocketReader as PythonWebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE
from aiohttp.http_websocket import WebSocketError, WebSocketWriter
from multidict import CIMultiDict

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, deflate
from rotary.protocol.codec import ProtocolType
from rotary.protocol.deflate import MessageDeflater
from rotary.protocol.framing import ws_compressed_frame, ws_frame

log = logging.getLogger("rotary.transports.websocket")

SUBPROTOCOL_JSON = "centrifuge-json"
SUBPROTOCOL_PROTOBUF = "centrifuge-protobuf"
DEFAULT_WRITE_TIMEOUT = 1.0
"""Seconds a close frame may wait to be written (Centrifugo's `websocket.write_timeout` default)."""
DEFAULT_MESSAGE_SIZE_LIMIT = 65536
DECOMPRESSED_LIMIT_FACTOR = 10
"""With compression, a client message may inflate to this many times `message_size_limit` unless
`decompressed_message_size_limit` is set (Centrifugo's default)."""

_DATA_OPCODES = frozenset((WSMsgType.TEXT.value, WSMsgType.BINARY.value, WSMsgType.CONTINUATION.value))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OriginCheck = Callable[[web.Request], bool]


def data_frame(payload: bytes, binary: bool, deflater: MessageDeflater | None) -> bytes:
    """A server data frame, compressed when the connection negotiated it and the message is long
    enough; every connection with the same settings gets the same bytes."""
    if deflater is not None and deflater.compresses(len(payload)):
        return ws_compressed_frame(deflater.deflate(payload), binary)
    return ws_frame(payload, binary)


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
        deflater: MessageDeflater | None = None,
    ) -> None:
        self.protocol = protocol
        self._binary = protocol is ProtocolType.PROTOBUF
        self.framing = "ws-binary" if self._binary else "ws-text"
        if deflater is not None:
            self.framing += "-" + deflater.framing_suffix
        self._deflater = deflater
        self._ws = ws
        self._sock = sock
        self._write_timeout = write_timeout
        self._closing: asyncio.Task[bool] | None = None

    def frame(self, payload: bytes) -> bytes:
        return data_frame(payload, self._binary, self._deflater)

    def write(self, payload: bytes) -> None:
        if self._closing is None and not self._sock.is_closing():
            self._sock.write(self.frame(payload))

    def write_prepared(self, frame: bytes) -> int:
        # A peer may be gone before its read loop notices; uvloop raises on writes to a closed
        # socket, which would abort the fan-out loop for every later subscriber.
        sock = self._sock
        if self._closing is None and not sock.is_closing():
            sock.write(frame)
        return sock.get_write_buffer_size()

    def close(self, disconnect: codes.Disconnect) -> int:
        """Says goodbye with a close frame, never a disconnect push (returns 0)."""
        if self._closing is not None:
            return 0
        reason = disconnect.reason.encode()[:123]
        loop = asyncio.get_running_loop()
        self._closing = loop.create_task(self._ws.close(code=disconnect.code, message=reason))
        # One handle per closing connection, gone as soon as the close completes: a churn of
        # connections must not leave a timer behind each one for the whole write timeout.
        drop = loop.call_later(self._write_timeout, self._drop_if_stalled)
        self._closing.add_done_callback(lambda _: drop.cancel())
        return 0

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


class WireLimitedReader(PythonWebSocketReader):
    """aiohttp's frame reader (its pure-Python one: the compiled one cannot be extended) with a
    second limit, on the bytes of a message as received, beside ``max_msg_size`` on the inflated
    message: Centrifugo's ``message_size_limit`` and ``decompressed_message_size_limit``."""

    def __init__(
        self, queue: WebSocketDataQueue, inflated_limit: int, wire_limit: int, decode_text: bool
    ) -> None:
        super().__init__(queue, inflated_limit, compress=True, decode_text=decode_text)
        self._wire_limit = wire_limit

    def _handle_frame(self, fin: bool, opcode: int, payload: bytes | bytearray, compressed: int) -> None:
        received = len(self._partial) + len(payload)
        if self._wire_limit and opcode in _DATA_OPCODES and received > self._wire_limit:
            raise WebSocketError(
                WSCloseCode.MESSAGE_TOO_BIG, f"Message size {received} exceeds limit {self._wire_limit}"
            )
        super()._handle_frame(fin, opcode, payload, compressed)


class CompressingWebSocketResponse(web.WebSocketResponse):
    """Negotiates permessage-deflate as Centrifugo does, whatever parameters the client offers.

    aiohttp's own negotiation would answer some offers differently and take context over; only its
    reader is used here, to inflate client frames (bounded by ``max_msg_size``). Server frames are
    compressed by rotary (see :class:`WebSocketTransport`), never by aiohttp's writer, which writes
    only control frames, and those are never compressed.
    """

    def __init__(self, wire_limit: int, **options: Any) -> None:
        super().__init__(**options)
        self._wire_limit = wire_limit

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: WebSocketWriter) -> None:
        """aiohttp's own start (3.14), with a reader that also bounds the bytes received."""
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        assert self._loop is not None
        self._reader = WebSocketDataQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=self._loop)
        self._parser = WireLimitedReader(
            self._reader, self._max_msg_size, self._wire_limit, self._decode_text
        )
        callback = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=callback)
        request.protocol.keep_alive(False)  # as aiohttp: no HTTP keep-alive after an upgrade

    def _handshake(self, request: web.BaseRequest) -> tuple[CIMultiDict[str], str | None, int, bool]:
        return negotiate_deflate(request, *super()._handshake(request))


def negotiate_deflate(
    request: web.BaseRequest, headers: CIMultiDict[str], protocol: str | None, *_: object
) -> tuple[CIMultiDict[str], str | None, int, bool]:
    """aiohttp's handshake answer with Centrifugo's permessage-deflate negotiation in place of its own:
    the same fixed answer to any offer of the extension, nothing without one."""
    headers.popall(hdrs.SEC_WEBSOCKET_EXTENSIONS, None)
    if not deflate.offered(request.headers.getall(hdrs.SEC_WEBSOCKET_EXTENSIONS, ())):
        return headers, protocol, 0, False
    headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = deflate.RESPONSE
    return headers, protocol, 15, True


def read_limits(message_size_limit: int, decompressed_message_size_limit: int) -> tuple[int, int]:
    """The largest client message as received and, with compression, after inflating it, as
    centrifuge's WebSocket handler sets them: ``message_size_limit`` 0 is 65536, the decompressed
    limit 0 is ten times that, and a negative one is no limit (0 here, as aiohttp's ``max_msg_size``).
    """
    wire = message_size_limit or DEFAULT_MESSAGE_SIZE_LIMIT
    inflated = decompressed_message_size_limit or wire * DECOMPRESSED_LIMIT_FACTOR
    return max(wire, 0), max(inflated, 0)


def protocol_of(request: web.Request, subprotocol: str | None) -> ProtocolType:
    """The client protocol an upgrade asked for: the negotiated subprotocol, else the query."""
    if subprotocol == SUBPROTOCOL_PROTOBUF:
        return ProtocolType.PROTOBUF
    # The query is parsed (and kept by the request) only when it can name protobuf.
    if "protobuf" in request.query_string and "protobuf" in (
        request.query.get("cf_protocol"),
        request.query.get("format"),
    ):
        return ProtocolType.PROTOBUF
    return ProtocolType.JSON


def websocket_handler(
    node: Node,
    *,
    message_size_limit: int = 65536,
    check_origin: OriginCheck | None = None,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    compression: MessageDeflater | None = None,
    decompressed_message_size_limit: int = 0,
    host_request: bool = False,
) -> Handler:
    """An aiohttp handler serving the bidirectional client protocol for ``node``.

    ``compression`` (one deflater shared by every connection) turns permessage-deflate on;
    ``host_request`` shows hooks the aiohttp request (``ConnectionInfo.request``), for mounts.
    """
    wire_limit, inflated_limit = read_limits(message_size_limit, decompressed_message_size_limit)
    write_timeout = write_timeout or DEFAULT_WRITE_TIMEOUT

    async def handle(request: web.Request) -> web.StreamResponse:
        if check_origin is not None and not check_origin(request):
            return web.Response(status=403, text="Forbidden")
        ws = websocket_response(
            compression, wire_limit, inflated_limit, (SUBPROTOCOL_JSON, SUBPROTOCOL_PROTOBUF), True
        )
        await ws.prepare(request)
        sock = request.transport
        if sock is None:
            return ws
        deflater = compression if ws.compress else None
        protocol = protocol_of(request, ws.ws_protocol)
        transport = WebSocketTransport(ws, sock, protocol, write_timeout, deflater)
        headers = {k.lower(): v for k, v in request.headers.items()}
        client = Client(node, transport, headers, request.remote or "")
        if host_request:
            client.request = request
        try:
            await _read_loop(ws, client)
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)
            await transport.wait_closed()
        return ws

    return handle


def websocket_response(
    compression: MessageDeflater | None,
    message_size_limit: int,
    inflated_limit: int,
    protocols: tuple[str, ...],
    autoping: bool,
) -> web.WebSocketResponse:
    """The aiohttp response for one upgrade, negotiating compression when it is on.

    With compression on, a message is bounded twice as in Centrifugo: ``message_size_limit`` on the
    bytes received (compressed or not), ``inflated_limit`` on the inflated message.
    """
    if compression is None:
        return web.WebSocketResponse(
            protocols=protocols,
            compress=False,
            max_msg_size=message_size_limit,
            autoclose=True,
            autoping=autoping,
        )
    return CompressingWebSocketResponse(
        message_size_limit,
        protocols=protocols,
        compress=True,
        max_msg_size=inflated_limit,
        autoclose=True,
        autoping=autoping,
    )


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
