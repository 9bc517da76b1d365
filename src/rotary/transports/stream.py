"""The connection side shared by the bidirectional emulation transports (HTTP streaming, SSE).

The server-to-client half is one long HTTP response; the client-to-server half arrives as separate
``POST /emulation`` requests, possibly on another node, and reaches the connection through
``Node.emulation_sessions`` (see ``transports/emulation.py``). The request handler is the
connection's reader: it runs the connect command of the first request, then every frame the
emulation endpoint delivers, one after another, as the WebSocket read loop does.

Frames are written straight to the socket (one chunk of the chunked response per batch), which lets
one prepared frame serve every subscriber with the same framing. When the connection ends for any
reason but the peer leaving, a disconnect push is the stream's last message, as centrifuge writes it
for these transports. A peer that goes away is noticed by one periodic check per endpoint, since
aiohttp tells a handler nothing about a lost connection while it is not reading.
See https://centrifugal.dev/docs/transports/http_stream and https://centrifugal.dev/docs/transports/sse.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolError, ProtocolType, codec_for
from rotary.protocol.streaming import emulation_frame, http_chunk
from rotary.transports.body import BodyError, read_body
from rotary.transports.stalled import ByteSink, drop_if_stalled

log = logging.getLogger("rotary.transports.stream")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OriginCheck = Callable[[web.Request], bool]
BodyFraming = Callable[[bytes], bytes]

WRITE_TIMEOUT = 1.0
"""Seconds the end of a stream may wait to be written (centrifuge's streaming write timeout)."""
PEER_CHECK_INTERVAL = 1.0
"""How often an endpoint looks for streams whose peer has gone."""
MAX_PENDING_FRAMES = 256
"""Inbound frames of one connection waiting to run; beyond this the client floods and is closed."""
DEFAULT_MAX_BODY = 65536
"""Centrifugo's body limit when a ``max_request_body_size`` is 0."""

STREAM_HEADERS = {
    "X-Accel-Buffering": "no",
    "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expire": "0",
}
"""Response headers of both streaming transports, as centrifuge sends them."""


class StreamTransport:
    """Writes the server-to-client half of one emulated connection and queues its inbound frames."""

    unidirectional = False

    def __init__(
        self,
        name: str,
        protocol: ProtocolType,
        body: BodyFraming,
        sock: ByteSink,
        chunked: bool,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.name = name
        self.protocol = protocol
        self.framing = f"{name}-{protocol.value}-{'chunked' if chunked else 'raw'}"
        self._body = body
        self._chunked = chunked
        self._sock = sock
        self._write_timeout = write_timeout
        self._inbox: deque[bytes] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self.closed = False

    def frame(self, payload: bytes) -> bytes:
        body = self._body(payload)
        return http_chunk(body) if self._chunked else body

    def write(self, payload: bytes) -> None:
        self.write_prepared(self.frame(payload))

    def write_prepared(self, frame: bytes) -> int:
        sock = self._sock
        if not self.closed and not sock.is_closing():
            sock.write(frame)
        return sock.get_write_buffer_size()

    def close(self, disconnect: codes.Disconnect) -> int:
        if self.closed:
            return 0
        pushed = b""
        if disconnect.code != codes.DISCONNECT_CONNECTION_CLOSED.code:
            push = pb.Push(disconnect=pb.Disconnect(code=disconnect.code, reason=disconnect.reason))
            pushed = codec_for(self.protocol).encode_reply(pb.Reply(push=push))
            self.write(pushed)
        self.closed = True
        self._wake()
        drop_if_stalled(self._sock, self._write_timeout)
        return len(pushed)

    def abort(self) -> None:
        """Ends the stream with no goodbye (no disconnect push), as after a refused connect."""
        if self.closed:
            return
        self.closed = True
        self._wake()
        self._sock.abort()

    def peer_gone(self) -> bool:
        return self._sock.is_closing()

    # -- the inbound half ----------------------------------------------------------------------

    def receive(self, frame: bytes) -> bool:
        """Queues one inbound frame; False when too many are waiting already."""
        if self.closed:
            return True
        if len(self._inbox) >= MAX_PENDING_FRAMES:
            return False
        self._inbox.append(frame)
        self._wake()
        return True

    async def next_frame(self) -> bytes | None:
        """The next inbound frame, or None once the connection is closed."""
        while not self._inbox:
            if self.closed:
                return None
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        return None if self.closed else self._inbox.popleft()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


class PeerWatch:
    """Closes the connections of one endpoint whose peer has gone, checking all of them periodically.

    One timer per endpoint, armed only while it has streams, instead of one per connection.
    """

    def __init__(self, interval: float = PEER_CHECK_INTERVAL) -> None:
        self._interval = interval
        self._streams: dict[StreamTransport, Client] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, transport: StreamTransport, client: Client) -> None:
        self._streams[transport] = client
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._sweep)

    def discard(self, transport: StreamTransport) -> None:
        self._streams.pop(transport, None)
        if not self._streams and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sweep(self) -> None:
        self._timer = None
        for transport, client in list(self._streams.items()):
            if transport.peer_gone():
                client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        if self._streams:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._sweep)


def add_cors_headers(request: web.Request, response: web.StreamResponse, check_origin: OriginCheck) -> None:
    """Centrifugo's CORS middleware: an allowed Origin is echoed back, credentials allowed.

    A disallowed origin gets no CORS headers, so the browser refuses the response to its page. A
    request without an Origin passes the check and so gets the headers too, with an empty origin, as
    Centrifugo sends them.
    """
    if check_origin(request):
        asked = request.headers.get("Access-Control-Request-Headers", "")
        response.headers.update(cors_headers(request.headers.get("Origin", ""), asked))


def cors_headers(origin: str, asked_headers: str) -> dict[str, str]:
    """The CORS headers of an answer to an allowed ``origin`` (see add_cors_headers)."""
    headers = {"Access-Control-Allow-Origin": origin}
    if asked_headers and asked_headers != "null":
        headers["Access-Control-Allow-Headers"] = asked_headers
    headers["Access-Control-Allow-Credentials"] = "true"
    return headers


PREFLIGHT_HEADERS = {"Access-Control-Max-Age": "300", "Access-Control-Allow-Methods": "POST, OPTIONS"}
"""Added to the CORS headers in the answer to a preflight of a POST endpoint."""


def preflight(request: web.Request, check_origin: OriginCheck) -> web.Response:
    """The answer to a browser's CORS preflight of a POST endpoint."""
    response = web.Response(status=204)
    add_cors_headers(request, response, check_origin)
    response.headers.update(PREFLIGHT_HEADERS)
    return response


def plain(request: web.Request, check_origin: OriginCheck, status: int, text: str) -> web.Response:
    response = web.Response(status=status, text=text)
    add_cors_headers(request, response, check_origin)
    return response


async def post_body(
    request: web.Request, check_origin: OriginCheck, limit: int
) -> bytes | web.StreamResponse:
    """The body of a POST endpoint, or the answer that ends the request: the CORS preflight, 405 for
    another method, 400 for an unreadable body, 413 past ``limit``."""
    if request.method == "OPTIONS":
        return preflight(request, check_origin)
    if request.method != "POST":
        return plain(request, check_origin, 405, "method not allowed")
    try:
        body = await read_body(request, limit or DEFAULT_MAX_BODY)
    except BodyError:
        return plain(request, check_origin, 400, "unreadable request body")
    if body is None:
        return plain(request, check_origin, 413, "request body too large")
    return body


async def serve_stream(
    request: web.Request,
    node: Node,
    watch: PeerWatch,
    name: str,
    protocol: ProtocolType,
    body: BodyFraming,
    first: bytes,
    check_origin: OriginCheck,
    content_type: str = "",
    preamble: bytes = b"",
    host_request: bool = False,
) -> web.StreamResponse:
    """Runs one emulated connection from its first request (the connect command) to its end;
    ``host_request`` shows hooks the aiohttp request (``ConnectionInfo.request``), for mounts."""
    response = web.StreamResponse(status=200, headers=STREAM_HEADERS)
    if content_type:
        response.headers["Content-Type"] = content_type
    add_cors_headers(request, response, check_origin)
    chunked = request.version >= (1, 1)
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.force_close()
    writer = await response.prepare(request)
    sock = request.transport
    if sock is None or writer is None:
        return response
    writer.send_headers()  # before the frames this transport writes to the socket itself
    transport = StreamTransport(name, protocol, body, sock, chunked)
    if preamble:
        transport.write_prepared(http_chunk(preamble) if chunked else preamble)
    headers = {k.lower(): v for k, v in request.headers.items()}
    client = Client(node, transport, headers, request.remote or "")
    if host_request:
        client.request = request
    watch.add(transport, client)
    try:
        await run_emulated(client, transport, first)
    finally:
        watch.discard(transport)
    try:
        await response.write_eof()
    except ConnectionError:
        pass
    return response


async def run_emulated(client: Client, transport: StreamTransport, first: bytes) -> None:
    """Reads one emulated connection to its end: the connect command of its first request, then
    the frames the emulation endpoint delivers to its session, one after another."""
    node = client.node
    protocol = transport.protocol
    client.session_id = str(uuid.uuid4())

    def deliver(data: bytes) -> None:
        try:
            frame = emulation_frame(data, protocol)
        except ProtocolError as exc:
            log.info("unreadable emulation data for client %s: %s", client.id, exc)
            return
        if not transport.receive(frame):
            log.info("client %s has %d commands waiting: closing it", client.id, MAX_PENDING_FRAMES)
            client.close(codes.DISCONNECT_TOO_MANY_REQUESTS)

    node.emulation_sessions[client.session_id] = deliver
    try:
        await client.handle_frame(first)
        while not client.closed:
            frame = await transport.next_frame()
            if frame is None:
                break
            await client.handle_frame(frame)
    finally:
        node.emulation_sessions.pop(client.session_id, None)
        client.close(codes.DISCONNECT_CONNECTION_CLOSED)
