"""The HTTP response stream under uni_sse and uni_http_stream: one long response of JSON pushes.

The connect runs before the response starts, as in Centrifugo, so a refused connect can still become
a plain HTTP answer (`connect_code_to_http_response`). Once the headers are out, rotary writes
already framed bytes (an SSE event or a JSON line, in an HTTP/1.1 chunk) straight to the socket's
asyncio transport, which lets one prepared publication frame serve every subscriber with the same
framing; aiohttp ends the chunked body. A peer that goes away is noticed when its socket closes (a
thin wrapper around aiohttp's protocol), not at the next write.
See https://centrifugal.dev/docs/transports/uni_sse and https://centrifugal.dev/docs/transports/uni_http_stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import HttpVersion11, web

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType
from rotary.protocol.uni_framing import http_chunk
from rotary.transports.body import BodyError, read_body
from rotary.transports.stalled import drop_if_stalled
from rotary.transports.uni_connect import (
    BadConnectRequest,
    CodeToHTTPResponse,
    answer,
    disconnect_push,
    http_answer,
    parse_connect_request,
    sends_disconnect_push,
)

log = logging.getLogger("rotary.transports.uni_stream")

STREAM_WRITE_TIMEOUT = 1.0
"""Seconds the last bytes of a closed stream may wait for a peer to take them (Centrifugo's value)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OriginCheck = Callable[[web.Request], bool]
RequestReader = Callable[[web.Request], Awaitable["pb.ConnectRequest | web.Response"]]
"""Reads the connect request of an HTTP request, or answers it (bad method, body, JSON)."""


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What makes one unidirectional stream transport differ from another."""

    name: str
    body_framing: Callable[[bytes], bytes]
    """Turns an encoded push or newline-joined batch into the bytes of the response body."""
    headers: Mapping[str, str]
    preamble: bytes = b""
    """Written and flushed right after the headers."""


class UniStreamTransport:
    """Writes framed pushes into one streaming HTTP response; buffers them until its headers are out."""

    unidirectional = True
    protocol = ProtocolType.JSON

    def __init__(self, fmt: StreamFormat, chunked: bool, write_timeout: float = STREAM_WRITE_TIMEOUT) -> None:
        self.name = fmt.name
        self.framing = f"{fmt.name}/{'chunked' if chunked else 'raw'}"
        self._body_framing = fmt.body_framing
        self._chunked = chunked
        self._write_timeout = write_timeout
        self._sock: asyncio.WriteTransport | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.ended = asyncio.Event()
        """Set when the server closed the stream; the handler then finishes the response."""

    def frame(self, payload: bytes) -> bytes:
        body = self._body_framing(payload)
        return http_chunk(body) if self._chunked else body

    def write(self, payload: bytes) -> None:
        if not self.ended.is_set():
            self._send(self.frame(payload))

    def write_prepared(self, frame: bytes) -> int:
        # The fan-out calls this once per subscriber: _send's socket branch in line.
        sock = self._sock
        if sock is None:
            if not self.ended.is_set():
                self._send(frame)
            return self._pending_size
        if not self.ended.is_set() and not sock.is_closing():  # uvloop raises on writes to a closed socket
            sock.write(frame)
        return sock.get_write_buffer_size()

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            self._pending.append(data)
            self._pending_size += len(data)
        elif not sock.is_closing():  # uvloop raises on writes to a closed socket
            sock.write(data)

    def start(self, sock: asyncio.WriteTransport, preamble: bytes) -> None:
        """The headers are out: writes the preamble and what was buffered, then writes directly."""
        pending, self._pending, self._pending_size = self._pending, [], 0
        self._sock = sock
        if preamble:
            self._send(self.frame_raw(preamble))
        for data in pending:
            self._send(data)

    def frame_raw(self, body: bytes) -> bytes:
        """Body bytes that need no push framing (the SSE preamble)."""
        return http_chunk(body) if self._chunked else body

    def close(self, disconnect: codes.Disconnect) -> int:
        if self.ended.is_set():
            return 0
        pushed = b""
        if sends_disconnect_push(disconnect):
            pushed = disconnect_push(disconnect)
            self._send(self.frame(pushed))
        self.ended.set()
        return len(pushed)

    def abort(self) -> None:
        """Ends the stream with no goodbye (no disconnect push) and drops the socket."""
        self.ended.set()
        if self._sock is not None:
            self._sock.abort()

    def schedule_drop(self) -> None:
        """Drops the socket if its last bytes are still unwritten after the write timeout."""
        if self._sock is not None:
            drop_if_stalled(self._sock, self._write_timeout)


class _PeerWatch(asyncio.Protocol):
    """Forwards every event to aiohttp's protocol and reports the end of the connection.

    aiohttp does not tell a running handler that its peer went away; without this a stream to a
    vanished client would live until its next write failed.
    """

    def __init__(self, inner: asyncio.Protocol, lost: asyncio.Event) -> None:
        self._inner = inner
        self._lost = lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost.set()
        self._inner.connection_lost(exc)


def _watch_peer(sock: asyncio.Transport) -> asyncio.Event:
    lost = asyncio.Event()
    inner = sock.get_protocol()
    if isinstance(inner, asyncio.Protocol):
        sock.set_protocol(_PeerWatch(inner, lost))
    return lost


def cors_headers(request: web.Request, check_origin: OriginCheck | None) -> dict[str, str]:
    """What Centrifugo's CORS middleware adds for an allowed Origin on connection endpoints."""
    origin = request.headers.get("Origin")
    if not origin or (check_origin is not None and not check_origin(request)):
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
    requested = request.headers.get("Access-Control-Request-Headers", "")
    if requested and requested != "null":
        headers["Access-Control-Allow-Headers"] = requested
    return headers


STREAM_HEADERS: Mapping[str, str] = {
    "X-Accel-Buffering": "no",
    "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expire": "0",
}
"""Headers of every unidirectional stream response, as Centrifugo sends them."""


def uni_stream_handler(
    node: Node,
    fmt: StreamFormat,
    read_request: RequestReader,
    *,
    http_rules: tuple[CodeToHTTPResponse, ...] | None = None,
    check_origin: OriginCheck | None = None,
) -> Handler:
    """An aiohttp handler streaming pushes in ``fmt``; ``http_rules`` is None unless a refused connect
    is answered with an HTTP status (`connect_code_to_http_response.enabled`)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        cors = cors_headers(request, check_origin)
        read = await read_request(request)
        if isinstance(read, web.StreamResponse):
            read.headers.update(cors)
            return read
        sock = request.transport
        if sock is None or sock.is_closing():
            return web.Response(status=400)
        chunked = request.version >= HttpVersion11
        transport = UniStreamTransport(fmt, chunked)
        headers = {k.lower(): v for k, v in request.headers.items()}
        client = Client(node, transport, headers, request.remote or "")
        try:
            failure = await client.connect_unidirectional(read)
            if failure is not None:
                if http_rules is not None:
                    client.close(codes.DISCONNECT_CONNECTION_CLOSED)
                    refusal = answer(http_answer(failure, http_rules))
                    refusal.headers.update(cors)
                    return refusal
                client.close(client.unidirectional_disconnect(failure))
            response = web.StreamResponse(headers={**cors, **fmt.headers, **STREAM_HEADERS})
            if chunked:
                response.headers["Connection"] = "keep-alive"
                response.enable_chunked_encoding()
            else:
                response.force_close()
            lost = _watch_peer(sock)
            await response.prepare(request)
            transport.start(sock, fmt.preamble)
            await _until_ended(transport, lost)
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        await _finish(response, transport)
        return response

    return handle


async def _until_ended(transport: UniStreamTransport, lost: asyncio.Event) -> None:
    ended = asyncio.ensure_future(transport.ended.wait())
    gone = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait((ended, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        gone.cancel()


async def _finish(response: web.StreamResponse, transport: UniStreamTransport) -> None:
    """Ends the body once the peer took the last pushes, or drops a peer that does not take them."""
    transport.schedule_drop()
    try:
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass


async def connect_request_from_body(request: web.Request, limit: int) -> pb.ConnectRequest | web.Response:
    """A POSTed JSON connect request; 413 past ``limit`` bytes, 400 when it is not a connect request
    or cannot be read to its end."""
    try:
        body = await read_body(request, limit)
    except BodyError:
        return web.Response(status=400, text="unreadable request body\n")
    if body is None:
        return web.Response(status=413, text=f"request body larger than {limit} bytes\n")
    try:
        return parse_connect_request(body)
    except BadConnectRequest as exc:
        log.debug("malformed connect request: %s", exc)
        return web.Response(status=400, text=f"malformed connect request: {exc}\n")
