"""The first protocol of every connection the standalone server accepts: it answers a WebSocket
upgrade of the client endpoint itself and passes every other request to aiohttp.

A connect + subscribe over WebSocket used to go through aiohttp's whole per-connection machinery for
one request whose answer rotary already writes itself (transports/ws_handshake.py): aiohttp's
connection protocol and its task, its parser's message, URL and headers, the Request, the router,
the middlewares, then the hand-over. That was about a sixth of the server's instructions per
connect (issue 15; bench/README.md, "The front door"). The front door reads the first request's head
with httptools (llhttp, the parser aiohttp uses too) and takes it only when it is a plain
``GET <websocket path> HTTP/1.1`` upgrade that rotary would answer with a 101: the same handshake
checks (``answer_of``), the origin check, then admission (``connection_rate_limit``,
``connection_limit``, shutdown) as the gate would run it. Anything else (another path or method, a
query naming protobuf, a body, no ``Host``, bytes outside ASCII, a head over
``HEAD_LIMIT``, a handshake aiohttp would refuse, an origin or admission refusal) goes to aiohttp
unchanged, with the bytes read so far, and is answered exactly as before: the front door never
answers an error itself. It is used only when the application adds nothing to an upgrade that
aiohttp would (``serves_alone``): no middleware beyond the read deadlines and the 404 page, no
response signal beyond dropping ``Server``. The header deadline of the HTTP server
(server/http_deadlines.py) runs from the accept, in the front door, then in aiohttp's protocol.
See ARCHITECTURE.md, decision 27, and https://centrifugal.dev/docs/transports/websocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from rotary.node.node import Node
from rotary.protocol.codec import ProtocolType
from rotary.protocol.deflate import MessageDeflater
from rotary.server.http_deadlines import ReadDeadlines
from rotary.server.not_found import unrouted_paths
from rotary.server.server_header import drop_server_header
from rotary.transports.admission import ConnectionRateLimiter, admits, would_admit
from rotary.transports.websocket import SUBPROTOCOL_JSON, SUBPROTOCOL_PROTOBUF
from rotary.transports.ws_connection import serve_upgraded
from rotary.transports.ws_handshake import answer_to, head_of
from rotary.transports.ws_protocol import WebSocketEndpoint

HEAD_LIMIT = 8190
"""Bytes of a request head the front door reads before it leaves the request to aiohttp, whose
limits (8190 bytes per line) then answer it."""

_PROTOCOLS = (SUBPROTOCOL_JSON, SUBPROTOCOL_PROTOBUF)
_JSON = ProtocolType.JSON
_PROTOBUF = ProtocolType.PROTOBUF
"""Bound once: on Python 3.11 an Enum class attribute costs about 850 instructions."""


@dataclass(frozen=True, slots=True)
class WebSocketDoor:
    """What the front door needs to take an upgrade of the bidirectional WebSocket endpoint."""

    node: Node
    endpoint: WebSocketEndpoint
    path: bytes
    """The endpoint's path as a request target spells it (before any ``?``)."""
    compression: MessageDeflater | None
    origin_matches: Callable[[str], bool]
    """The origin check without its log line: a refusal goes on to the endpoint, which logs it."""
    limiter: ConnectionRateLimiter | None
    connection_limit: Callable[[], int]


def serves_alone(app: web.Application, deadlines: ReadDeadlines) -> bool:
    """Whether aiohttp would add nothing to the 101 the front door writes: ``app`` has no
    middleware but the read deadlines and the 404 page, no response signal but dropping ``Server``
    (metrics of HTTP handlers, tracing or Alt-Svc make aiohttp take every upgrade)."""
    own = (deadlines.middleware, unrouted_paths)
    return all(m in own for m in app.middlewares) and all(
        s is drop_server_header for s in app.on_response_prepare
    )


def front_door_factory(
    handlers: Callable[[], RequestHandler], deadlines: ReadDeadlines, door: WebSocketDoor
) -> Callable[[], FrontDoor]:
    """The listener's protocol factory: a front door per accepted connection, handing what it does
    not take to a connection handler from ``handlers``."""
    return lambda: FrontDoor(handlers, deadlines, door)


class _Head:
    """httptools' callbacks: the request target and the header fields, as bytes."""

    __slots__ = ("fields", "url")

    def __init__(self) -> None:
        self.url = b""
        self.fields: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))


def _one(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


def _first_values(fields: list[tuple[bytes, bytes]]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The first value of each header name (lower-cased), and every Sec-WebSocket-Extensions value:
    what the handshake checks read when a name was sent more than once."""
    first: dict[str, str] = {}
    extensions: list[str] = []
    for raw_name, raw_value in fields:
        name, value = raw_name.decode().lower(), raw_value.decode()
        first.setdefault(name, value)
        if name == "sec-websocket-extensions":
            extensions.append(value)
    return first, tuple(extensions)


class FrontDoor(asyncio.Protocol):
    """One accepted connection until its first request is known: then rotary's WebSocket protocol
    or aiohttp's request handler becomes the transport's protocol."""

    __slots__ = ("_buffer", "_deadlines", "_door", "_handlers", "_sock")

    def __init__(
        self, handlers: Callable[[], RequestHandler], deadlines: ReadDeadlines, door: WebSocketDoor
    ) -> None:
        self._handlers = handlers
        self._deadlines = deadlines
        self._door = door
        self._buffer = b""
        self._sock: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sock = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self._deadlines.start(self)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > HEAD_LIMIT:
                self._to_aiohttp(buffer)
            else:
                self._buffer = buffer
            return
        self._buffer = b""
        if end >= HEAD_LIMIT or not self._take(buffer, end + 4):
            self._to_aiohttp(buffer)

    def eof_received(self) -> bool | None:
        return self._to_aiohttp(self._buffer).eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadlines.stop(self)

    def force_close(self) -> None:
        """The header deadline passed before the request was known."""
        if self._sock is not None:
            self._sock.close()

    def _take(self, buffer: bytes, end: int) -> bool:
        """Serves the request if it is a WebSocket upgrade the front door may answer; False leaves
        it to aiohttp, with nothing done yet that aiohttp would do again."""
        head = buffer[:end]
        if not head.startswith(b"GET ") or not head.isascii():
            return False
        fields = _Head()
        parser = httptools.HttpRequestParser(fields)
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            return False
        else:
            return False  # not an upgrade (aiohttp answers it; an upgrade ends the parse with this)
        if parser.get_http_version() != "1.1":
            return False
        door = self._door
        path, _, query = fields.url.partition(b"?")
        # bytes.find, not `in`: on Python 3.11 `in` formats a discarded TypeError first
        if path != door.path or query.find(b"protobuf") >= 0:
            return False  # another route, or a query aiohttp parses (`cf_protocol`, `format`)
        # The headers as the client gets them (names lower-cased, ASCII since the head is): a name
        # sent twice keeps its last value there, while the handshake checks read its first (and
        # every Sec-WebSocket-Extensions), as aiohttp's multidict does.
        headers = {name.decode().lower(): value.decode() for name, value in fields.fields}
        first, extensions = (
            (headers, _one(headers.get("sec-websocket-extensions")))
            if len(headers) == len(fields.fields)
            else _first_values(fields.fields)
        )
        if "content-length" in first or "transfer-encoding" in first or "host" not in first:
            return False  # a body, or no Host, which HTTP/1.1 requires (aiohttp answers 400)
        answer = answer_to(
            first.get("upgrade", ""),
            True,
            first.get("sec-websocket-protocol"),
            first.get("sec-websocket-version", ""),
            first.get("sec-websocket-key"),
            extensions,
            _PROTOCOLS,
            door.compression is not None,
        )
        origin = first.get("origin", "")
        if answer is None or not door.origin_matches(origin):
            return False
        if not would_admit(door.node, door.limiter, door.connection_limit):
            return False
        admits(door.node, door.limiter, door.connection_limit)  # takes the rate limit's token
        sock = self._sock
        assert sock is not None
        self._deadlines.stop(self)
        sock.write(head_of("HTTP/1.1", answer.headers.items()))
        protocol = _PROTOBUF if answer.subprotocol == SUBPROTOCOL_PROTOBUF else _JSON
        peer = sock.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, (list, tuple)) else ""
        serve_upgraded(
            door.node,
            door.endpoint,
            sock,
            protocol,
            door.compression if answer.deflate else None,
            headers,
            remote,
            buffer[end:],
        )
        return True

    def _to_aiohttp(self, buffer: bytes) -> asyncio.Protocol:
        """aiohttp's request handler takes the connection, its header deadline and ``buffer``."""
        sock = self._sock
        assert sock is not None
        handler = self._handlers()
        sock.set_protocol(handler)
        handler.connection_made(sock)
        self._deadlines.move(self, handler)
        if buffer:
            handler.data_received(buffer)
        return handler
