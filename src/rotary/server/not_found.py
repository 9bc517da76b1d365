"""The answer to a path no endpoint serves: Go's ``http.NotFound``, as Centrifugo's mux gives it.

Centrifugo routes with Go's ``http.ServeMux``, whose 404 is ``404 page not found`` and a newline, as
``text/plain; charset=utf-8`` with ``X-Content-Type-Options: nosniff``
(https://centrifugal.dev/docs/server/configuration#http_server). aiohttp's own is ``404: Not Found``.
Only unrouted paths get it: an endpoint's own 404 (an unknown node of an emulation request) keeps its
message.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import MatchInfoError

BODY = "404 page not found\n"


def page_not_found() -> web.Response:
    return web.Response(
        status=404,
        text=BODY,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@web.middleware
async def unrouted_paths(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers a path that matched no route as Go does; everything else passes through."""
    match_info = request.match_info
    if isinstance(match_info, MatchInfoError) and match_info.http_exception.status == 404:
        return page_not_found()
    return await handler(request)
