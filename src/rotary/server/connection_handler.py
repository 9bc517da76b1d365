"""aiohttp's per-connection protocol, answering a request it cannot parse as Centrifugo does.

Centrifugo's HTTP server is Go's ``net/http``. To a request head it cannot read (a header line
without a colon, a method with a control byte, an HTTP/1.1 request without ``Host``) it writes a
bare answer and closes the connection::

    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Connection: close

    400 Bad Request

(``400 Bad Request: missing required Host header`` in the status line and body for a missing
``Host``, ``431 Request Header Fields Too Large`` for a head over its limit). aiohttp's own answer
is an ``HTTP/1.0 400`` whose body quotes the parser's message and the offending bytes back, with
``Server: Python/x aiohttp/y``: the parse failed before any app was chosen, so the
``on_response_prepare`` signal that drops ``Server`` elsewhere (server_header.py) never runs, and
the answer names the software and versions the server runs. ``ConnectionHandler`` writes net/http's
bytes instead. Every other answer, and every request aiohttp can parse, is aiohttp's as before.

The head limits stay aiohttp's (8190 bytes per line, 128 header fields), bounding what one client
makes the server hold; net/http takes up to 1 MiB of headers. A line over aiohttp's limit gets the
431 that net/http sends over its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

log = logging.getLogger("rotary.server")

_HEADERS = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
_MISSING_HOST = "Missing 'Host' header in request."
"""aiohttp's message for an HTTP/1.1 request without ``Host`` (pinned by tests/differential)."""


def _net_http_answer(status: str) -> bytes:
    return f"HTTP/1.1 {status}{_HEADERS}{status}".encode()


BAD_REQUEST = _net_http_answer("400 Bad Request")
MISSING_HOST = _net_http_answer("400 Bad Request: missing required Host header")
HEAD_TOO_LARGE = _net_http_answer("431 Request Header Fields Too Large")


def answer_to(failure: HttpProcessingError) -> bytes:
    """net/http's answer to a request head that failed to parse with ``failure``."""
    if isinstance(failure, LineTooLong):
        return HEAD_TOO_LARGE
    if failure.message == _MISSING_HOST:
        return MISSING_HOST
    return BAD_REQUEST


class _WrittenAnswer(web.StreamResponse):
    """A response whose bytes, status line and headers included, are written as they are."""

    def __init__(self, status: int, answer: bytes) -> None:
        super().__init__(status=status)
        self._answer = answer
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            transport.write(self._answer)
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class ConnectionHandler(web.RequestHandler):
    """aiohttp's request handler for one connection, with net/http's answer to a request head it
    cannot parse."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp passes 400 with the parser's error for a head it cannot parse, and nothing of a
        # response has been written then; any other error is aiohttp's to answer.
        if status != 400 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        log.debug("unparsable request from %s: %s", request.remote, exc.message)
        answer = answer_to(exc)
        return _WrittenAnswer(int(answer[9:12]), answer)


def connection_handlers(server: web.Server, **options: Any) -> Callable[[], ConnectionHandler]:
    """A new ``ConnectionHandler`` for each accepted connection of ``server`` (an AppRunner's, on
    the running loop), built with the ``options`` the runner was given (``keepalive_timeout``,
    ``access_log``), as ``server()`` builds aiohttp's own."""
    loop = asyncio.get_running_loop()

    def accept() -> ConnectionHandler:
        return ConnectionHandler(server, loop=loop, **options)

    return accept
