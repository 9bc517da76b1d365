"""Ordinary HTTP requests over HTTP/3: every route of the TCP listener, served on the QUIC one.

Centrifugo's HTTP/3 server runs the very handler of its TCP server on the HTTP port (the API, the
emulation and SSE/HTTP-stream endpoints, health, admin, metrics...), see
https://centrifugal.dev/docs/server/configuration#http_serverhttp3. rotary's routes are aiohttp
handlers that speak HTTP/1.1 to a transport (the streaming ones even write their chunks to the
socket themselves), so each HTTP/3 request stream gets its own aiohttp connection handler, made by
the TCP listener's protocol factory (read deadlines included), on a transport that is the stream:
the request goes in as HTTP/1.1 bytes, and the HTTP/1.1 response that comes out is read back into
HTTP/3 headers and DATA. One route set, so limits, 404s, CORS and deadlines are the same on both.

The stream carries exactly one request: the request says ``Connection: close``, so aiohttp closes
the transport after its response, and that ends the stream if the response had no length.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any, Protocol

log = logging.getLogger("rotary.transports.h3_requests")

H3Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te", b"expect")
)
"""Connection-specific fields, which HTTP/3 forbids (RFC 9114 4.2) and HTTP/1.1 framing owns."""
MAX_UNREAD_BODY = 1 << 20
"""Request body bytes held for a handler that stopped reading; beyond this the stream is reset."""
_FORBIDDEN = (b"\r", b"\n", b"\0")


class ResponseSink(Protocol):
    """What a request stream needs of its HTTP/3 connection."""

    def send_headers(self, stream_id: int, headers: H3Headers, end: bool) -> None: ...

    def send_body(self, stream_id: int, data: bytes, end: bool) -> None: ...

    def unacked(self, stream_id: int) -> int: ...

    def abort_stream(self, stream_id: int) -> None: ...

    def remote(self) -> str: ...

    def request_done(self, stream_id: int) -> None: ...


class H3Requests:
    """The routes of the TCP listener, as HTTP/3 requests reach them: ``protocol_factory`` makes
    one aiohttp connection handler per request stream."""

    def __init__(self, protocol_factory: Callable[[], asyncio.Protocol]) -> None:
        self.protocol_factory = protocol_factory
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        """Shown to aiohttp as the stream's ``sslcontext``: the request came over QUIC, which is
        TLS 1.3, so ``request.secure`` holds and URLs are https, as on the TLS listener."""

    def open(
        self, sink: ResponseSink, stream_id: int, headers: H3Headers, ended: bool
    ) -> RequestStream | None:
        """The request stream for ``headers``; None when they cannot be a request (answered 400)."""
        head = request_head(headers, ended)
        if head is None:
            sink.send_headers(stream_id, [(b":status", b"400")], True)
            return None
        data, chunked, no_body = head
        return RequestStream(self, sink, stream_id, data, chunked=chunked, no_body=no_body, ended=ended)


def request_head(headers: H3Headers, ended: bool) -> tuple[bytes, bool, bool] | None:
    """The HTTP/1.1 request head of HTTP/3 ``headers``, whether its body must be chunked (no
    content-length, body to come) and whether the response has no body (HEAD)."""
    pseudo: dict[bytes, bytes] = {}
    lines: list[bytes] = []
    host = b""
    has_length = False
    for name, value in headers:
        if any(c in name or c in value for c in _FORBIDDEN):
            return None
        if name.startswith(b":"):
            pseudo.setdefault(name, value)
        elif name == b"host":
            host = host or value
        elif name not in HOP_BY_HOP:
            has_length = has_length or name == b"content-length"
            lines.append(name + b": " + value)
    method = pseudo.get(b":method", b"")
    path = pseudo.get(b":path", b"")
    if not method or not path.startswith(b"/") or b" " in path or b" " in method:
        return None
    chunked = not ended and not has_length
    lines.append(b"host: " + (pseudo.get(b":authority") or host))
    lines.append(b"connection: close")
    if chunked:
        lines.append(b"transfer-encoding: chunked")
    elif ended and not has_length and method not in (b"GET", b"HEAD"):
        lines.append(b"content-length: 0")
    head = b"%s %s HTTP/1.1\r\n%s\r\n\r\n" % (method, path, b"\r\n".join(lines))
    return head, chunked, method == b"HEAD"


class RequestStream(asyncio.Transport):
    """One HTTP/3 request stream, as the transport of the aiohttp handler serving it."""

    def __init__(
        self,
        requests: H3Requests,
        sink: ResponseSink,
        stream_id: int,
        head: bytes,
        *,
        chunked: bool,
        no_body: bool,
        ended: bool,
    ) -> None:
        super().__init__()
        self.stream_id = stream_id
        self._requests = requests
        self._sink = sink
        self._chunked = chunked
        self._response = ResponseReader(sink, stream_id, no_body)
        self._closing = False
        self._paused = False
        self._unread = bytearray()
        self._unread_end = False
        self._protocol = requests.protocol_factory()
        self._protocol.connection_made(self)
        self._protocol.data_received(head + (b"0\r\n\r\n" if chunked and ended else b""))

    # -- the request, from the peer ------------------------------------------------------------

    def receive(self, data: bytes, ended: bool) -> None:
        """Body bytes of the request (and its end), passed on as HTTP/1.1 body."""
        if self._closing:
            return
        if self._chunked:
            data = (b"%x\r\n%s\r\n" % (len(data), data) if data else b"") + (b"0\r\n\r\n" if ended else b"")
        if self._paused or self._unread:
            self._unread += data
            if len(self._unread) > MAX_UNREAD_BODY:
                log.info("HTTP/3 request on stream %d: body not read, dropped", self.stream_id)
                self.abort()
            return
        if data:
            self._protocol.data_received(data)

    def peer_gone(self) -> None:
        """The peer reset the stream or the connection ended."""
        if self._closing:
            return
        self._closing = True
        self._sink.request_done(self.stream_id)
        self._protocol.connection_lost(None)

    # -- asyncio.Transport, for aiohttp --------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing:
            self._response.feed(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """aiohttp is done with the request: the response ends here (a response framed by the end
        of the connection) or, when it is incomplete, the stream is reset."""
        self._end(abort=not self._response.finish())

    def abort(self) -> None:
        self._end(abort=not self._response.done)

    def _end(self, abort: bool) -> None:
        if self._closing:
            return
        self._closing = True
        if abort:
            self._sink.abort_stream(self.stream_id)
        self._sink.request_done(self.stream_id)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def get_write_buffer_size(self) -> int:
        return self._sink.unacked(self.stream_id)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            remote = self._sink.remote()
            return (remote, 0) if remote else default
        if name == "sslcontext":
            return self._requests.tls
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_reading(self) -> bool:
        return not self._paused

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        if self._unread and not self._closing:
            data, self._unread = bytes(self._unread), bytearray()
            self._protocol.data_received(data)


class ResponseReader:
    """An HTTP/1.1 response, read as it is written, sent on as HTTP/3 headers and DATA."""

    def __init__(self, sink: ResponseSink, stream_id: int, no_body: bool) -> None:
        self._sink = sink
        self._stream_id = stream_id
        self._no_body = no_body
        self._buffer = bytearray()
        self._state = "head"
        self._left = 0
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self._buffer += data
        body: list[bytes] = []
        end = self._parse(body)
        if self.done:  # a response without a body: its headers ended the stream
            return
        if body or end:
            self._sink.send_body(self._stream_id, b"".join(body), end)
            self.done = end

    def finish(self) -> bool:
        """The response ended with the connection: whether that completed it."""
        if self.done:
            return True
        if self._state == "until-close":
            self.done = True
            self._sink.send_body(self._stream_id, b"", True)
        return self.done

    def _parse(self, body: list[bytes]) -> bool:
        """Moves what is complete in the buffer to the sink; True once the response has ended."""
        buffer = self._buffer
        while buffer:
            state = self._state
            if state == "head":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return False
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                if self._head(head):
                    return True
            elif state == "length":
                if self._take(body):
                    return True
            elif state == "until-close":
                body.append(bytes(buffer))
                buffer.clear()
            elif state == "chunk-size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    return False
                size = int(bytes(buffer[:end]).split(b";")[0], 16)
                del buffer[: end + 2]
                self._left = size
                self._state = "chunk" if size else "trailer"
            elif state == "chunk":
                if self._take(body):
                    self._state = "chunk-end"
            elif state == "chunk-end":
                if len(buffer) < 2:
                    return False
                del buffer[:2]
                self._state = "chunk-size"
            else:  # "trailer": aiohttp writes none, so the empty line ends the response
                return True
        return self._state == "trailer"

    def _take(self, body: list[bytes]) -> bool:
        """Moves up to ``_left`` body bytes from the buffer to ``body``; True once none are left."""
        piece = bytes(self._buffer[: self._left])
        del self._buffer[: len(piece)]
        body.append(piece)
        self._left -= len(piece)
        return not self._left

    def _head(self, head: bytes) -> bool:
        """Sends the status and headers; True when the response has no body."""
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        if status < 200:  # an interim response (100 Continue): the real one follows
            return False
        headers: H3Headers = [(b":status", b"%d" % status)]
        chunked = False
        length = -1
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-length":
                length = int(value)
            if name not in HOP_BY_HOP:
                headers.append((name, value))
        empty = self._no_body or status in (204, 304) or (length == 0 and not chunked)
        if chunked and not empty:
            self._state = "chunk-size"
        elif length > 0 and not empty:
            self._state, self._left = "length", length
        else:
            self._state = "until-close"
        self._sink.send_headers(self._stream_id, headers, empty)
        self.done = empty
        return empty
