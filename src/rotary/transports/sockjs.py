"""SockJS at ``/connection/sockjs``, opt-in (``sockjs.enabled``; rotary's own section).

Centrifugo v4 and v5 served SockJS; v6 dropped it, and centrifuge-js still accepts a ``sockjs``
transport. rotary serves the SockJS protocol itself: the aio-libs ``sockjs`` package queues each
message per session and writes it from a task per connection, which would give up the one prepared
frame per group of subscribers that every other transport writes.

A SockJS session is one connection of the client protocol (JSON only): a ``Client`` whose transport
is the session. Its messages are the JSON protocol's frames, one per SockJS message, as over
WebSocket. Sub-transports:

- ``websocket``: the session lives with one WebSocket, which is also its reader;
- ``xhr_streaming`` and ``eventsource``: a streaming response receives; it ends after
  ``RESPONSE_LIMIT`` bytes and the client opens the next one for the same session;
- ``xhr``: long polling, each poll answered with what is waiting (or a heartbeat);
- ``xhr_send``: the client's messages for an HTTP session, run in order by the session's reader.

Frames of a session are built by its ``frame`` (one ``a[...]`` frame per encoded batch, wrapped as the
sub-transport needs), so fan-out prepares a frame once per sub-transport. An HTTP session without a
receiving request keeps what it was sent (counted as buffered, so a client that never reads meets the
slow-client limit) and is closed after ``DISCONNECT_DELAY`` without one. Closing a session sends
``c[code,"reason"]`` with the disconnect's code, which centrifuge-js reads like a WebSocket close.
See https://centrifugal.dev/docs/4/transports/sockjs and https://github.com/sockjs/sockjs-protocol.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.framing import ws_frame
from rotary.protocol.streaming import http_chunk
from rotary.transports import sockjs_frames as frames
from rotary.transports.body import BodyError, read_body
from rotary.transports.stalled import drop_if_stalled
from rotary.transports.websocket import DEFAULT_MESSAGE_SIZE_LIMIT

log = logging.getLogger("rotary.transports.sockjs")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Gate = Callable[[Handler], Handler]
OriginCheck = Callable[[web.Request], bool]
Wrap = Callable[[bytes], bytes]

RESPONSE_LIMIT = 128 * 1024
"""Bytes one streaming response carries before it ends and the client opens the next (the spec's)."""
DISCONNECT_DELAY = 5.0
"""Seconds an HTTP session may go without a receiving request before it counts as gone."""
SWEEP_INTERVAL = 1.0
"""How often heartbeats, gone peers and abandoned sessions are looked for."""
WRITE_TIMEOUT = 1.0
"""Seconds the end of a connection may wait to be written."""
MAX_PENDING_MESSAGES = 256
"""Inbound messages of one session waiting to run; beyond this the client floods and is closed."""
TRANSPORTS = ("websocket", "xhr", "xhr_send", "xhr_streaming", "eventsource")
_SESSION_PATH = re.compile(r"^/([^/.]+)/([^/.]+)/([a-z_]+)$")
_IFRAME_PATH = re.compile(r"^/iframe[0-9A-Za-z_.-]*\.html$")
STREAM_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0"
JS_TYPE = "application/javascript; charset=UTF-8"
YEAR = 31536000


def _xhr_streaming_wrap(chunked: bool) -> Wrap:
    if chunked:
        return lambda frame: http_chunk(frame + b"\n")
    return lambda frame: frame + b"\n"


def _eventsource_wrap(chunked: bool) -> Wrap:
    if chunked:
        return lambda frame: http_chunk(b"data: " + frame + b"\r\n\r\n")
    return lambda frame: b"data: " + frame + b"\r\n\r\n"


def _ws_wrap(frame: bytes) -> bytes:
    return ws_frame(frame, False)


class SockJSSession:
    """The Transport of one SockJS session, whichever request currently receives for it."""

    name = "sockjs"
    protocol = ProtocolType.JSON
    unidirectional = False

    def __init__(self, kind: str, wrap: Wrap, chunked: bool = True) -> None:
        self.kind = kind
        streaming = kind in ("xhr_streaming", "eventsource")
        self.framing = f"sockjs-{kind}-{'chunked' if chunked else 'raw'}" if streaming else f"sockjs-{kind}"
        self.chunked = chunked
        self.wrap = wrap
        self._polling = kind == "xhr"
        self._sock: asyncio.Transport | None = None
        self._sent = 0
        self._ended: asyncio.Future[None] | None = None
        """Set when the current streaming response must end."""
        self._poll: asyncio.Future[bytes] | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._inbox: deque[bytes] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._ws: web.WebSocketResponse | None = None
        self._ws_closing: asyncio.Task[bool] | None = None
        loop = asyncio.get_running_loop()
        self.detached_since: float | None = loop.time()
        self.last_write = loop.time()
        """When the sweep last saw this session written to (heartbeats go to idle receivers)."""
        self.wrote = False
        """Set by every write and cleared by the sweep: cheaper on the fan-out path than a clock read."""
        self.closed_frame: bytes | None = None
        self.closed_at = 0.0

    # -- Transport -----------------------------------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        element = frames.message_element(payload)
        if self._polling:
            return element
        return self.wrap(b"a[" + element + b"]")

    def write(self, payload: bytes) -> None:
        self.write_prepared(self.frame(payload))

    def write_prepared(self, frame: bytes) -> int:
        self._put(frame)
        sock = self._sock
        return self._pending_size + (sock.get_write_buffer_size() if sock is not None else 0)

    def _put(self, frame: bytes) -> None:
        if self.closed_frame is not None:
            return
        sock = self._sock
        if sock is None or self._polling:
            self._pending.append(frame)
            self._pending_size += len(frame)
            if self._poll is not None:
                self._answer_poll(self._take_pending())
            return
        if sock.is_closing():
            return
        sock.write(frame)
        self.wrote = True
        if self._ended is not None:
            self._sent += len(frame)
            if self._sent > RESPONSE_LIMIT:
                self._end_stream()

    def close(self, disconnect: codes.Disconnect) -> int:
        if self.closed_frame is not None:
            return 0
        self.closed_frame = frames.close_frame(disconnect.code, disconnect.reason)
        self.closed_at = asyncio.get_running_loop().time()
        self._pending.clear()
        self._pending_size = 0
        self._wake()
        if self._polling:  # the waiting poll, or else the next one, answers with the close frame
            self._answer_poll(self.closed_frame)
            return 0
        sock = self._sock
        if sock is not None and not sock.is_closing():
            if disconnect.code != codes.DISCONNECT_CONNECTION_CLOSED.code:
                sock.write(self.wrap(self.closed_frame))
            drop_if_stalled(sock, WRITE_TIMEOUT)
        self._end_stream()
        if self._ws is not None:
            self._close_ws()
        return 0

    def abort(self) -> None:
        if self.closed_frame is None:
            self.closed_frame = frames.close_frame(3000, "Go away!")
            self.closed_at = asyncio.get_running_loop().time()
        self._wake()
        if self._sock is not None:
            self._sock.abort()
        self._end_stream()

    # -- receivers -----------------------------------------------------------------------------

    def busy(self) -> bool:
        """Another request receives for this session."""
        return self._poll is not None or self._ended is not None

    def bind_websocket(self, ws: web.WebSocketResponse, sock: asyncio.Transport) -> None:
        self._ws = ws
        self._sock = sock
        self.detached_since = None

    def attach_stream(self, sock: asyncio.Transport) -> asyncio.Future[None]:
        """Makes a streaming response the receiver; it gets what waited, then live frames."""
        self._sock = sock
        self._sent = 0
        self.detached_since = None
        self._ended = asyncio.get_running_loop().create_future()
        for frame in self._take_pending_frames():
            sock.write(frame)
            self._sent += len(frame)
        self.last_write = asyncio.get_running_loop().time()
        return self._ended

    def take_poll_answer(self) -> bytes | None:
        """What a poll can be answered with at once: waiting messages, else None."""
        return self._take_pending() if self._pending else None

    def attach_poll(self, sock: asyncio.Transport) -> asyncio.Future[bytes]:
        self._sock = sock
        self.detached_since = None
        self._poll = asyncio.get_running_loop().create_future()
        self.last_write = asyncio.get_running_loop().time()
        return self._poll

    def detach(self) -> None:
        """The receiving request has ended, for whatever reason."""
        self._poll = None
        self._ended = None
        if self._ws is None:
            self._sock = None
        self.detached_since = asyncio.get_running_loop().time()

    def heartbeat(self) -> None:
        if self._poll is not None:
            self._answer_poll(frames.HEARTBEAT)
        elif self._sock is not None and self._ended is not None and not self._sock.is_closing():
            self._sock.write(self.wrap(frames.HEARTBEAT))
            self.last_write = asyncio.get_running_loop().time()

    def receiver_gone(self) -> bool:
        return self._sock is not None and self._ws is None and self._sock.is_closing()

    def end_receiver(self) -> None:
        """Ends the current receiving request (its peer has gone)."""
        if self._poll is not None:
            self._answer_poll(frames.HEARTBEAT)
        self._end_stream()

    def _take_pending(self) -> bytes:
        elements, self._pending = self._pending, []
        self._pending_size = 0
        return frames.messages_frame(elements)

    def _take_pending_frames(self) -> list[bytes]:
        pending, self._pending = self._pending, []
        self._pending_size = 0
        return pending

    def _answer_poll(self, body: bytes) -> None:
        poll, self._poll = self._poll, None
        if poll is not None and not poll.done():
            poll.set_result(body)

    def _end_stream(self) -> None:
        ended, self._ended = self._ended, None
        if ended is not None and not ended.done():
            ended.set_result(None)

    def _close_ws(self) -> None:
        assert self._ws is not None
        if self._ws_closing is not None:
            return
        self._ws_closing = asyncio.get_running_loop().create_task(self._ws.close())

    async def wait_closed(self) -> None:
        if self._ws_closing is not None:
            try:
                await self._ws_closing
            except (ConnectionError, asyncio.CancelledError):
                pass

    # -- the inbound half of HTTP sessions ---------------------------------------------------

    def receive(self, message: bytes) -> bool:
        """Queues one inbound message; False when too many are waiting already."""
        if self.closed_frame is not None:
            return True
        if len(self._inbox) >= MAX_PENDING_MESSAGES:
            return False
        self._inbox.append(message)
        self._wake()
        return True

    async def next_message(self) -> bytes | None:
        while not self._inbox:
            if self.closed_frame is not None:
                return None
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        return None if self.closed_frame is not None else self._inbox.popleft()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


@dataclass(slots=True)
class _Live:
    session: SockJSSession
    client: Client
    reader: asyncio.Task[None]
    """Held here so that the loop's weak reference is not the only one while the session lives."""


class SockJSEndpoint:
    """Every SockJS route under one prefix, with the HTTP sessions of this node."""

    def __init__(
        self,
        node: Node,
        *,
        sockjs_url: str,
        heartbeat_delay: float,
        message_size_limit: int,
        check_origin: OriginCheck,
        gate: Gate,
    ) -> None:
        self._node = node
        self._heartbeat = heartbeat_delay
        self._limit = message_size_limit or DEFAULT_MESSAGE_SIZE_LIMIT  # 0: the WebSocket default
        self._check_origin = check_origin
        self._sessions: dict[str, _Live] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._open_websocket = gate(self._websocket)
        self._open_http = gate(self._open_http_session)
        self._iframe = frames.iframe_page(sockjs_url)
        self._etag = f'"{uuid.uuid5(uuid.NAMESPACE_URL, sockjs_url).hex}"'

    async def handle(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        if not self._check_origin(request):
            return web.Response(status=403, text="Forbidden")
        if tail in ("", "/"):
            if request.method != "GET":
                return web.Response(status=405)
            return web.Response(body=frames.WELCOME, content_type="text/plain", charset="UTF-8")
        if tail == "/info":
            return self._info(request)
        if _IFRAME_PATH.match(tail):
            return self._iframe_response(request)
        match = _SESSION_PATH.match(tail)
        if match is None or match.group(3) not in TRANSPORTS:
            return web.Response(status=404, text="Not Found")
        kind = match.group(3)
        if kind == "websocket":
            if request.method != "GET":
                return web.Response(status=405)
            return await self._open_websocket(request)
        if request.method == "OPTIONS" and kind != "eventsource":
            return self._preflight(request, "OPTIONS, POST")
        expected = "GET" if kind == "eventsource" else "POST"
        if request.method != expected:
            return web.Response(status=405)
        session_id = match.group(2)
        if kind == "xhr_send":
            return await self._xhr_send(request, session_id)
        live = self._sessions.get(session_id)
        if live is None:
            return await self._open_http(request)
        if live.session.kind != kind:
            return web.Response(status=404, text="Not Found")
        return await self._receive(request, live.session)

    # -- fixed answers -------------------------------------------------------------------------

    def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin", "")
        response.headers["Access-Control-Allow-Origin"] = origin if origin and origin != "null" else "*"
        response.headers["Access-Control-Allow-Credentials"] = "true"
        asked = request.headers.get("Access-Control-Request-Headers", "")
        if asked:
            response.headers["Access-Control-Allow-Headers"] = asked

    def _preflight(self, request: web.Request, methods: str) -> web.Response:
        response = web.Response(status=204)
        self._cors(request, response)
        response.headers["Access-Control-Allow-Methods"] = methods
        response.headers["Access-Control-Max-Age"] = str(YEAR)
        response.headers["Cache-Control"] = f"public, max-age={YEAR}"
        return response

    def _info(self, request: web.Request) -> web.Response:
        if request.method == "OPTIONS":
            return self._preflight(request, "OPTIONS, GET")
        if request.method != "GET":
            return web.Response(status=405)
        body = frames.info_body(True, random.getrandbits(32))
        response = web.Response(body=body, content_type="application/json", charset="UTF-8")
        response.headers["Cache-Control"] = STREAM_CACHE
        self._cors(request, response)
        return response

    def _iframe_response(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return web.Response(status=405)
        if request.headers.get("If-None-Match") == self._etag:
            return web.Response(status=304)
        response = web.Response(body=self._iframe, content_type="text/html", charset="UTF-8")
        response.headers["ETag"] = self._etag
        response.headers["Cache-Control"] = f"public, max-age={YEAR}"
        return response

    # -- websocket -----------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=self._limit, autoclose=True, autoping=True)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text='Can "Upgrade" only to "WebSocket".')
        await ws.prepare(request)
        sock = request.transport
        if sock is None:
            return ws
        session = SockJSSession("websocket", _ws_wrap)
        session.bind_websocket(ws, sock)
        sock.write(_ws_wrap(frames.OPEN))
        client = Client(self._node, session, _headers(request), request.remote or "")
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    client.close(codes.DISCONNECT_BAD_REQUEST)
                    break
                if not msg.data:
                    continue
                try:
                    messages = frames.client_messages(msg.data)
                except frames.BadMessages as exc:
                    log.info("client %s sent a bad SockJS frame: %s", client.id, exc)
                    client.close(codes.DISCONNECT_BAD_REQUEST)
                    break
                for message in messages:
                    await client.handle_frame(message.encode())
                    if client.closed:
                        break
                if client.closed:
                    break
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)
            await session.wait_closed()
        return ws

    # -- HTTP sessions -------------------------------------------------------------------------

    async def _open_http_session(self, request: web.Request) -> web.StreamResponse:
        match = _SESSION_PATH.match(request.match_info.get("tail", ""))
        assert match is not None
        session_id, kind = match.group(2), match.group(3)
        if session_id in self._sessions:  # opened by a concurrent request meanwhile
            return await self._receive(request, self._sessions[session_id].session)
        chunked = request.version >= (1, 1)
        wrap = _eventsource_wrap(chunked) if kind == "eventsource" else _xhr_streaming_wrap(chunked)
        session = SockJSSession(kind, wrap, chunked)
        client = Client(self._node, session, _headers(request), request.remote or "")
        reader = asyncio.get_running_loop().create_task(self._read(session, client))
        self._sessions[session_id] = _Live(session, client, reader)
        self._arm()
        if kind == "xhr":
            return self._xhr_response(request, frames.OPEN + b"\n")
        session.write_prepared(wrap(frames.OPEN))
        return await self._stream(request, session)

    async def _read(self, session: SockJSSession, client: Client) -> None:
        """Runs the messages xhr_send delivered, one after another, as a WebSocket reader does."""
        try:
            while not client.closed:
                message = await session.next_message()
                if message is None:
                    break
                await client.handle_frame(message)
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)

    async def _receive(self, request: web.Request, session: SockJSSession) -> web.StreamResponse:
        if session.kind == "xhr":
            return await self._poll(request, session)
        if (request.version >= (1, 1)) != session.chunked:
            return web.Response(status=400, text="HTTP version changed within the session")
        return await self._stream(request, session)

    async def _poll(self, request: web.Request, session: SockJSSession) -> web.StreamResponse:
        if session.closed_frame is not None:
            return self._xhr_response(request, session.closed_frame + b"\n")
        if session.busy():
            return self._xhr_response(request, frames.close_frame(*frames.ANOTHER_CONNECTION) + b"\n")
        waiting = session.take_poll_answer()
        if waiting is not None:
            return self._xhr_response(request, waiting + b"\n")
        sock = request.transport
        if sock is None:
            return web.Response(status=400)
        poll = session.attach_poll(sock)
        try:
            body = await poll
        finally:
            session.detach()
        return self._xhr_response(request, body + b"\n")

    def _xhr_response(self, request: web.Request, body: bytes) -> web.Response:
        response = web.Response(body=body, headers={"Content-Type": JS_TYPE, "Cache-Control": STREAM_CACHE})
        self._cors(request, response)
        return response

    async def _stream(self, request: web.Request, session: SockJSSession) -> web.StreamResponse:
        eventsource = session.kind == "eventsource"
        response = web.StreamResponse(status=200)
        response.headers["Content-Type"] = "text/event-stream; charset=UTF-8" if eventsource else JS_TYPE
        response.headers["Cache-Control"] = STREAM_CACHE
        self._cors(request, response)
        if session.chunked:
            response.enable_chunked_encoding()
        else:
            response.force_close()
        writer = await response.prepare(request)
        sock = request.transport
        if sock is None or writer is None:
            return response
        writer.send_headers()
        prelude = frames.EVENTSOURCE_PRELUDE if eventsource else frames.XHR_STREAMING_PRELUDE
        sock.write(http_chunk(prelude) if session.chunked else prelude)
        if session.closed_frame is not None:
            sock.write(session.wrap(session.closed_frame))
        elif session.busy():
            sock.write(session.wrap(frames.close_frame(*frames.ANOTHER_CONNECTION)))
        else:
            ended = session.attach_stream(sock)
            try:
                await ended
            finally:
                session.detach()
        try:
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _xhr_send(self, request: web.Request, session_id: str) -> web.StreamResponse:
        live = self._sessions.get(session_id)
        if live is None:
            return web.Response(status=404, text="Not Found")
        try:
            body = await read_body(request, self._limit)
        except BodyError:
            return web.Response(status=400, text="unreadable request body")
        if body is None:
            return web.Response(status=413, text="request body too large")
        if not body:
            return web.Response(status=400, text="Payload expected.")
        try:
            messages = frames.client_messages(body)
        except frames.BadMessages:
            return web.Response(status=400, text="Broken JSON encoding.")
        for message in messages:
            if not live.session.receive(message.encode()):
                log.info(
                    "client %s has %d messages waiting: closing it", live.client.id, MAX_PENDING_MESSAGES
                )
                live.client.close(codes.DISCONNECT_TOO_MANY_REQUESTS)
                break
        response = web.Response(status=204, headers={"Content-Type": "text/plain; charset=UTF-8"})
        self._cors(request, response)
        return response

    # -- upkeep --------------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._timer is None and self._sessions:
            self._timer = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        """Heartbeats, receivers whose peer left, sessions abandoned or closed long enough ago."""
        self._timer = None
        now = asyncio.get_running_loop().time()
        for session_id, live in list(self._sessions.items()):
            session = live.session
            if session.closed_frame is not None:
                if now - session.closed_at >= DISCONNECT_DELAY:
                    del self._sessions[session_id]
                continue
            if session.receiver_gone():
                session.end_receiver()
            elif session.detached_since is not None and now - session.detached_since >= DISCONNECT_DELAY:
                live.client.close(codes.DISCONNECT_CONNECTION_CLOSED)
            elif session.wrote:
                session.wrote = False
                session.last_write = now
            elif self._heartbeat > 0 and now - session.last_write >= self._heartbeat:
                session.heartbeat()
        self._arm()


def _headers(request: web.Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def sockjs_routes(app: web.Application, prefix: str, endpoint: SockJSEndpoint) -> None:
    """Every SockJS path under ``prefix`` goes to ``endpoint``."""
    app.router.add_route("*", prefix.rstrip("/") + "{tail:(?:/.*)?}", endpoint.handle)
