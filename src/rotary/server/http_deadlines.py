"""Read deadlines on HTTP connections, so a slow or silent client cannot hold one open forever.

Centrifugo's HTTP server (internal/app/mux.go in v6.9.1) is Go's net/http with ReadHeaderTimeout 10 s
and ReadTimeout 30 s, and no IdleTimeout, so an idle keep-alive connection also closes after 30 s.
None of them is a config key there, so none is here. aiohttp has only the idle one
(``keepalive_timeout``, which also cuts a connection whose next request is not complete in time), so
the two others are kept by this module:

- a connection's first request must have all its headers within ``read_header`` seconds: the timer
  starts when the connection is accepted and stops when the request reaches the application (or
  when the standalone server's front door, server/front_door.py, takes a WebSocket upgrade; a
  request it leaves to aiohttp keeps the deadline it had);
- a request's body must have arrived within ``read`` seconds of its headers: the timer runs only
  while the body is still arriving, and stops as soon as it is complete, not when the handler returns.

An upgraded WebSocket is a request whose headers came in time and which has no body, so neither
deadline ever closes it, and an open WebSocket (or a long stream) holds no deadline timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class HttpTimeouts:
    """Seconds, as Centrifugo's net/http server has them; tests pass shorter ones."""

    read_header: float = 10.0
    read: float = 30.0
    idle: float = 30.0
    """Go falls back to ReadTimeout when IdleTimeout is unset."""


CENTRIFUGO_HTTP_TIMEOUTS = HttpTimeouts()


class Closable(Protocol):
    """A connection's protocol that a missed deadline ends: aiohttp's, or the front door's."""

    def force_close(self) -> None: ...


class ReadDeadlines:
    """Closes connections that miss the header or body deadline of HttpTimeouts.

    Serve with ``protocol_factory(handlers)`` as the listener's protocol factory (or the front
    door's, which calls :meth:`start` and :meth:`move` itself) and ``middleware`` on every
    application it serves.
    """

    def __init__(self, timeouts: HttpTimeouts) -> None:
        self.timeouts = timeouts
        self._header_timers: dict[Closable, asyncio.TimerHandle] = {}

    def protocol_factory(self, handlers: Callable[[], RequestHandler]) -> Callable[[], RequestHandler]:
        """A connection handler from ``handlers`` for each accepted connection, with its header
        deadline running."""

        def accept() -> RequestHandler:
            handler = handlers()
            self.start(handler)
            return handler

        return accept

    def start(self, connection: Closable) -> None:
        """Starts the header deadline of a connection just accepted."""
        loop = asyncio.get_running_loop()
        self._header_timers[connection] = loop.call_later(self.timeouts.read_header, self._expire, connection)

    def stop(self, connection: Closable) -> None:
        """The connection's first request has all its headers."""
        timer = self._header_timers.pop(connection, None)
        if timer is not None:
            timer.cancel()

    def move(self, connection: Closable, successor: Closable) -> None:
        """The header deadline of ``connection`` now ends ``successor``, at the same time."""
        timer = self._header_timers.pop(connection, None)
        if timer is None:
            return
        timer.cancel()
        loop = asyncio.get_running_loop()
        self._header_timers[successor] = loop.call_at(timer.when(), self._expire, successor)

    def _expire(self, connection: Closable) -> None:
        if self._header_timers.pop(connection, None) is not None:
            connection.force_close()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Stops the header deadline of the request's connection and runs its body deadline."""
        self.stop(request.protocol)
        if request.content.is_eof():  # no body (an upgrade, a GET), or all of it came with the headers
            return await handler(request)
        body_timer = asyncio.get_running_loop().call_later(self.timeouts.read, _close_if_unread, request)
        request.content.on_eof(body_timer.cancel)
        try:
            return await handler(request)
        finally:
            body_timer.cancel()


def _close_if_unread(request: web.Request) -> None:
    """Go's ReadTimeout: a body still arriving after the deadline ends the connection."""
    if not request.content.is_eof():
        request.protocol.force_close()
