"""Reading the body of a POST to a connection endpoint (HTTP streaming, SSE, their unidirectional
forms, emulation, SockJS), bounded as Centrifugo bounds it with ``http.MaxBytesReader``.

See https://centrifugal.dev/docs/transports/overview
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError


class BodyError(Exception):
    """The request body could not be read to its end: the peer went away or broke the framing."""


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` bytes (the caller answers 413).

    Reads at most one byte past the limit, whatever Content-Length claims; a body that cannot be
    read to its end raises BodyError, so that no handler lets it escape as a 500.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    try:
        while len(body) <= limit:
            chunk = await request.content.read(limit + 1 - len(body))
            if not chunk:
                break
            body += chunk
    except (ConnectionError, HttpProcessingError) as exc:
        raise BodyError(str(exc)) from exc
    return None if len(body) > limit else bytes(body)
