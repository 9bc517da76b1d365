"""The connection init endpoint (``init.enabled``, ``/connection/init`` by default).

Centrifugo v6 serves it as a connection endpoint that only answers ``200 {}`` to a GET: a client may
call it to warm an HTTP/2 connection up before its WebSocket upgrade, and load balancers may use it as
a public health check. Like every connection endpoint it sits behind the admission checks (rate,
count, shutdown: 503) and the CORS middleware, which echoes an allowed Origin and refuses nothing;
any other method gets an empty 405 before either.
See https://centrifugal.dev/docs/server/configuration#init
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from rotary.transports.stream import OriginCheck, add_cors_headers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Gate = Callable[[Handler], Handler]

BODY = b"{}"
CONTENT_TYPE = "application/json; charset=utf-8"


def conn_init_handler(check_origin: OriginCheck, gate: Gate) -> Handler:
    """The endpoint; ``gate`` puts the GET behind the node's admission checks."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=200, body=BODY, headers={"Content-Type": CONTENT_TYPE})
        add_cors_headers(request, response, check_origin)
        return response

    admitted = gate(answer)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return web.Response(status=405)
        return await admitted(request)

    return handle
