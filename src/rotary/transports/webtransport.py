"""Bidirectional WebTransport over HTTP/3 (experimental), JSON or Protobuf, on aioquic.

A browser opens a session with an extended CONNECT (``:protocol`` ``webtransport``) to the endpoint's
path, then one bidirectional stream that carries the client protocol both ways: JSON commands and
replies end with a newline, Protobuf ones are uvarint-length-delimited, and Protobuf is chosen by
``?cf_protocol=protobuf`` only. Like Centrifugo, the server writes a disconnect push, ends the stream,
and closes the session with the disconnect code a write timeout later, so the push reaches the
client first (https://centrifugal.dev/docs/transports/webtransport).

The CONNECT passes the same checks as a WebSocket upgrade, in Centrifugo's order: the path (404),
admission (503: rate, connection limit, shutdown), then the method, protocol and Origin (400).
Frames are written straight to the QUIC stream, so one prepared frame serves every subscriber of the
same framing; the datagrams of all connections written in one loop pass leave in one callback.

Every other request on the HTTP/3 listener goes to the routes of the TCP listener
(``transports/h3_requests.py``), as Centrifugo serves its whole mux over HTTP/3.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import FrameUnexpected, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.connection import NetworkAddress
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StopSendingReceived, StreamReset

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolError, ProtocolType, codec_for
from rotary.protocol.stream_decoder import MessageTooLarge, StreamDecoder
from rotary.protocol.streaming import http_stream_body
from rotary.transports.h3_requests import H3Headers, H3Requests, RequestStream

log = logging.getLogger("rotary.transports.webtransport")

CONNECT_PROTOCOLS = frozenset((b"webtransport", b"webtransport-h3"))
"""Extended CONNECT ``:protocol`` values of a WebTransport session (the draft's and the legacy one)."""
CLOSE_SESSION_CAPSULE = 0x2843
"""CLOSE_WEBTRANSPORT_SESSION: a 32-bit error code and a UTF-8 reason on the CONNECT stream."""
WRITE_TIMEOUT = 1.0
"""Seconds between the end of the stream and the close of the session (Centrifugo's write timeout)."""
STREAM_ACCEPT_TIMEOUT = 10.0
"""Seconds a session may go without opening its stream (Centrifugo's bidiStreamAcceptTimeout)."""
MAX_PENDING_BYTES = 1 << 20
"""Inbound command bytes of one connection waiting to run; beyond this the client floods and is closed."""
REASON_LIMIT = 1024
H3_REQUEST_CANCELLED = 0x10C
"""The HTTP/3 error code of a request stream the server gives up (RFC 9114 8.1)."""
ACCEPTED = [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")]


@dataclass(frozen=True, slots=True)
class WebTransportOptions:
    path: str
    message_size_limit: int = 65536
    admit: Callable[[], bool] = lambda: True
    """The node's admission checks (rate, connection limit, shutdown); False answers 503."""
    check_origin: Callable[[str], bool] = lambda origin: True
    write_timeout: float = WRITE_TIMEOUT
    accept_timeout: float = STREAM_ACCEPT_TIMEOUT


class Endpoint:
    """The HTTP/3 endpoint of one listener: every QUIC connection's protocol comes from here. It
    serves WebTransport sessions when ``options`` is given, and every other request through
    ``requests`` (the TCP listener's routes) once the server has set it."""

    def __init__(self, node: Node, options: WebTransportOptions | None) -> None:
        self.node = node
        self.options = options
        self.requests: H3Requests | None = None
        self.sessions: set[WebTransportSession] = set()
        self._dirty: set[H3Protocol] = set()
        self._flush: asyncio.Handle | None = None
        self._idle: asyncio.Event | None = None

    def create_protocol(self, *args: Any, **kwargs: Any) -> H3Protocol:
        return H3Protocol(self, *args, **kwargs)

    def transmit_soon(self, protocol: H3Protocol) -> None:
        """Sends ``protocol``'s datagrams at the end of this loop pass, with every other connection's."""
        self._dirty.add(protocol)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self._transmit)

    def _transmit(self) -> None:
        self._flush = None
        dirty, self._dirty = self._dirty, set()
        for protocol in dirty:
            protocol.transmit()

    def session_ended(self, session: WebTransportSession) -> None:
        self.sessions.discard(session)
        if not self.sessions and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Ends the sessions that have no client yet and waits (at most ``timeout``) for the others,
        which the node's shutdown is closing, to finish their goodbye."""
        for session in list(self.sessions):
            if session.client is None:
                session.end(codes.DISCONNECT_SHUTDOWN)
        if not self.sessions:
            return
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            pass


class H3Protocol(QuicConnectionProtocol):
    """One QUIC connection: HTTP/3 requests on it, WebTransport CONNECTs and ordinary requests."""

    def __init__(self, endpoint: Endpoint, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._endpoint = endpoint
        self._h3 = H3Connection(self._quic, enable_webtransport=True)
        self._sessions: dict[int, WebTransportSession] = {}
        self._data_streams: dict[int, WebTransportSession] = {}
        self._requests: dict[int, RequestStream] = {}

    def datagram_received(self, data: bytes | str, addr: NetworkAddress) -> None:
        """As aioquic's, but the datagrams this one calls for (ACKs, replies) leave at the end of the
        loop pass, in one transmit with the rest of the connection's, instead of one transmit per
        datagram received: a pass that reads a burst of ACKs builds packets once."""
        self._quic.receive_datagram(cast(bytes, data), addr, now=self._loop.time())
        self._process_events()
        self.transmit_soon()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            for session in list(self._sessions.values()):
                session.peer_gone()
            for request in list(self._requests.values()):
                request.peer_gone()
            return
        if isinstance(event, StreamReset | StopSendingReceived):
            ended = (
                self._data_streams.get(event.stream_id)
                or self._sessions.get(event.stream_id)
                or self._requests.get(event.stream_id)
            )
            if ended is not None:
                ended.peer_gone()
        for h3_event in self._h3.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, WebTransportStreamDataReceived):
            session = self._sessions.get(event.session_id)
            if session is not None:
                session.stream_data(event.stream_id, event.data, event.stream_ended)
        elif isinstance(event, HeadersReceived):
            if event.stream_id in self._sessions or event.stream_id in self._requests:
                return  # trailers
            try:
                self._request(event)
            except (FrameUnexpected, RuntimeError, ValueError) as exc:  # e.g. trailers after our answer
                log.info("unanswerable HTTP/3 request on stream %d: %s", event.stream_id, exc)
        elif isinstance(event, DataReceived):
            request = self._requests.get(event.stream_id)
            if request is not None:
                request.receive(event.data, event.stream_ended)
                return
            session = self._sessions.get(event.stream_id)
            if session is not None and (event.stream_ended or _closes_session(event.data)):
                session.peer_gone()

    def _request(self, event: HeadersReceived) -> None:
        headers: dict[bytes, bytes] = {}
        for key, value in event.headers:
            headers.setdefault(key, value)
        path, _, query = headers.get(b":path", b"").decode(errors="replace").partition("?")
        options = self._endpoint.options
        if options is None or path != options.path:
            self._ordinary_request(event, headers)
            return
        if not options.admit():
            self._respond(event.stream_id, 503, "Service Unavailable")
            return
        if headers.get(b":method") != b"CONNECT" or headers.get(b":protocol") not in CONNECT_PROTOCOLS:
            log.info("error upgrading to webtransport: not an extended CONNECT of webtransport")
            self._respond(event.stream_id, 400, "")
            return
        if not options.check_origin(headers.get(b"origin", b"").decode(errors="replace")):
            log.info("error upgrading to webtransport: request origin not allowed")
            self._respond(event.stream_id, 400, "")
            return
        protobuf = parse_qs(query).get("cf_protocol", [""])[0] == "protobuf"
        protocol = ProtocolType.PROTOBUF if protobuf else ProtocolType.JSON
        self._h3.send_headers(event.stream_id, ACCEPTED)
        plain = {
            key.decode(errors="replace"): value.decode(errors="replace")
            for key, value in headers.items()
            if not key.startswith(b":")
        }
        session = WebTransportSession(self, options, event.stream_id, protocol, plain)
        self._sessions[event.stream_id] = session
        self._endpoint.sessions.add(session)
        self.transmit_soon()

    def _ordinary_request(self, event: HeadersReceived, headers: dict[bytes, bytes]) -> None:
        """Any request but a WebTransport CONNECT: served by the TCP listener's routes."""
        requests = self._endpoint.requests
        if requests is None or headers.get(b":method") == b"CONNECT":
            self._respond(event.stream_id, 404, "404 page not found\n")
            return
        request = requests.open(self, event.stream_id, event.headers, event.stream_ended)
        if request is not None and not request.is_closing():
            self._requests[event.stream_id] = request
        self.transmit_soon()

    def _respond(self, stream_id: int, status: int, text: str) -> None:
        body = text.encode()
        self._h3.send_headers(
            stream_id,
            [(b":status", str(status).encode()), (b"content-type", b"text/plain; charset=utf-8")],
            end_stream=not body,
        )
        if body:
            self._h3.send_data(stream_id, body, end_stream=True)
        self.transmit_soon()

    # -- what sessions ask of their connection ---------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    def remote(self) -> str:
        if self._transport is None:
            return ""
        paths = getattr(self._quic, "_network_paths", None)
        return str(paths[0].addr[0]) if paths else ""

    def transmit_soon(self) -> None:
        self._endpoint.transmit_soon(self)

    def bind_stream(self, stream_id: int, session: WebTransportSession) -> None:
        self._data_streams[stream_id] = session

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        try:
            self._quic.send_stream_data(stream_id, data, end)
        except (RuntimeError, ValueError):  # the peer stopped the stream; its session is ending
            return
        self.transmit_soon()

    def send_headers(self, stream_id: int, headers: H3Headers, end: bool) -> None:
        try:
            self._h3.send_headers(stream_id, headers, end_stream=end)
        except (FrameUnexpected, RuntimeError, ValueError):  # the peer reset the stream meanwhile
            return
        self.transmit_soon()

    def send_body(self, stream_id: int, data: bytes, end: bool) -> None:
        try:
            self._h3.send_data(stream_id, data, end_stream=end)
        except (FrameUnexpected, RuntimeError, ValueError):
            return
        self.transmit_soon()

    def abort_stream(self, stream_id: int) -> None:
        stream = self._quic._streams.get(stream_id)
        if stream is not None and not stream.sender.is_finished:
            self._quic.reset_stream(stream_id, H3_REQUEST_CANCELLED)
            self.transmit_soon()

    def request_done(self, stream_id: int) -> None:
        self._requests.pop(stream_id, None)

    def unacked(self, stream_id: int) -> int:
        """Bytes written to the stream and not yet acknowledged by the peer (sent or waiting to be)."""
        stream = self._quic._streams.get(stream_id)
        return len(stream.sender._buffer) if stream is not None else 0

    def reset(self, stream_id: int) -> None:
        stream = self._quic._streams.get(stream_id)
        if stream is not None and not stream.sender.is_finished and stream.sender._buffer:
            self._quic.reset_stream(stream_id, 0)

    def close_session(self, session: WebTransportSession, code: int, reason: str) -> None:
        """Sends CLOSE_WEBTRANSPORT_SESSION and ends the CONNECT stream; when it was the connection's
        last session, the QUIC connection closes a write timeout later unless a new one began."""
        self._sessions.pop(session.connect_stream_id, None)
        if session.stream_id is not None:
            self._data_streams.pop(session.stream_id, None)
        payload = code.to_bytes(4, "big") + reason.encode()[:REASON_LIMIT]
        capsule = encode_uint_var(CLOSE_SESSION_CAPSULE) + encode_uint_var(len(payload)) + payload
        try:
            self._h3.send_data(session.connect_stream_id, capsule, end_stream=True)
        except (FrameUnexpected, RuntimeError, ValueError):  # the peer already ended or reset it
            log.debug("cannot send the session close of stream %d", session.connect_stream_id)
        self.transmit_soon()
        if not self._sessions:
            asyncio.get_running_loop().call_later(session.options.write_timeout, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if not self._sessions:
            self.close()


def _closes_session(data: bytes) -> bool:
    """Whether data on a CONNECT stream begins with the peer's CLOSE_WEBTRANSPORT_SESSION capsule
    (its type in the shortest encoding; the FIN that follows it ends the session anyway)."""
    return data.startswith(_CLOSE_SESSION_TYPE)


_CLOSE_SESSION_TYPE = encode_uint_var(CLOSE_SESSION_CAPSULE)


class WebTransportSession:
    """One WebTransport session: the Transport of its Client and the reader of its stream."""

    name = "webtransport"
    unidirectional = False

    def __init__(
        self,
        connection: H3Protocol,
        options: WebTransportOptions,
        connect_stream_id: int,
        protocol: ProtocolType,
        headers: dict[str, str],
    ) -> None:
        self.options = options
        self.protocol = protocol
        self.framing = f"webtransport-{protocol.value}"
        self.connect_stream_id = connect_stream_id
        self.stream_id: int | None = None
        self.client: Client | None = None
        self._connection = connection
        self._endpoint = connection.endpoint
        self._headers = headers
        self._decoder = StreamDecoder(protocol, self.options.message_size_limit)
        self._inbox: deque[bytes] = deque()
        self._pending = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._ended = False
        loop = asyncio.get_running_loop()
        self._accept_timer: asyncio.TimerHandle | None = loop.call_later(
            self.options.accept_timeout, self._not_accepted
        )

    # -- Transport -----------------------------------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        return http_stream_body(payload, self.protocol)

    def write(self, payload: bytes) -> None:
        self.write_prepared(http_stream_body(payload, self.protocol))

    def write_prepared(self, frame: bytes) -> int:
        if self.stream_id is None:
            return 0
        if not self._closing:
            self._connection.send(self.stream_id, frame)
        return self._connection.unacked(self.stream_id)

    def close(self, disconnect: codes.Disconnect) -> int:
        if self._closing:
            return 0
        if self._ended or self.stream_id is None:
            self.end(disconnect)
            return 0
        pushed = b""
        if disconnect.code != codes.DISCONNECT_CONNECTION_CLOSED.code:
            push = pb.Push(disconnect=pb.Disconnect(code=disconnect.code, reason=disconnect.reason))
            pushed = codec_for(self.protocol).encode_reply(pb.Reply(push=push))
            self.write(pushed)
        self._closing = True
        self._wake()
        self._connection.send(self.stream_id, b"", end=True)
        loop = asyncio.get_running_loop()
        loop.call_later(self.options.write_timeout, self.end, disconnect)
        return len(pushed)

    def abort(self) -> None:
        """Ends the session at once, with no disconnect push (as after a refused connect)."""
        self.end(codes.DISCONNECT_CONNECTION_CLOSED)

    # -- the session's life --------------------------------------------------------------------

    def end(self, disconnect: codes.Disconnect) -> None:
        """Closes the session with the disconnect's code: the stream is dropped if the peer has not
        taken all of it (a client that stopped reading), and CLOSE_WEBTRANSPORT_SESSION is sent."""
        if self._ended:
            return
        self._ended = True
        self._closing = True
        self._wake()
        if self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
        if self.stream_id is not None:
            self._connection.reset(self.stream_id)
        self._connection.close_session(self, disconnect.code, disconnect.reason)
        self._endpoint.session_ended(self)
        if self.client is not None:
            self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)

    def peer_gone(self) -> None:
        """The peer closed the session, reset its stream or lost the connection."""
        if self.client is not None and not self.client.closed:
            self.client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        self.end(codes.DISCONNECT_CONNECTION_CLOSED)

    def _not_accepted(self) -> None:
        self._accept_timer = None
        if self.stream_id is None:
            log.info("webtransport session opened no stream in %.0fs", self.options.accept_timeout)
            self.end(codes.DISCONNECT_CONNECTION_CLOSED)

    # -- the inbound half ----------------------------------------------------------------------

    def stream_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        """Bytes of one of the session's streams: the first stream is the connection's, others are
        ignored (Centrifugo accepts one)."""
        if self._ended:
            return
        if self.stream_id is None:
            self._start(stream_id)
        if stream_id != self.stream_id or self._closing:
            return
        try:
            frame = self._decoder.feed(data)
            if ended:
                frame += self._decoder.finish()
        except MessageTooLarge as exc:
            log.info("webtransport client %s: %s", self._client_id(), exc)
            self._close_client(codes.DISCONNECT_CONNECTION_CLOSED)
            return
        except ProtocolError as exc:
            log.info("webtransport client %s: %s", self._client_id(), exc)
            self._close_client(codes.DISCONNECT_BAD_REQUEST)
            return
        if frame:
            self._pending += len(frame)
            if self._pending > MAX_PENDING_BYTES:
                log.info("client %s floods: %d bytes of commands queued", self._client_id(), self._pending)
                self._close_client(codes.DISCONNECT_TOO_MANY_REQUESTS)
                return
            self._inbox.append(frame)
            self._wake()
        if ended:
            self._inbox.append(b"")  # the end of the stream, after the commands before it
            self._wake()

    def _start(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self._connection.bind_stream(stream_id, self)
        if self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
        self.client = Client(self._endpoint.node, self, self._headers, self._connection.remote())
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(self.client))

    async def _read_loop(self, client: Client) -> None:
        try:
            while not client.closed:
                frame = await self._next_frame()
                if not frame:
                    break
                await client.handle_frame(frame)
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)

    async def _next_frame(self) -> bytes:
        """The next inbound frame; b"" once the stream or the connection has ended."""
        while not self._inbox:
            if self._closing:
                return b""
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        frame = self._inbox.popleft()
        self._pending -= len(frame)
        return b"" if self._closing else frame

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _close_client(self, disconnect: codes.Disconnect) -> None:
        if self.client is not None:
            self.client.close(disconnect)
        else:
            self.end(disconnect)

    def _client_id(self) -> str:
        return self.client.id if self.client is not None else ""
