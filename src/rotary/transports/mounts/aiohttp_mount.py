"""An aiohttp sub-application serving a Node's connections, for ``app.add_subapp("/rt", ...)``.

It serves what ``rotary serve`` serves at Centrifugo's paths (https://centrifugal.dev/docs/transports/overview),
through the same builder (transports/routes.py): the bidirectional WebSocket at
``/connection/websocket``, HTTP streaming at ``/connection/http_stream``, SSE at ``/connection/sse``
and the emulation endpoint at ``/emulation``, all under the host's prefix. Hooks see the host's
aiohttp request in ``ConnectionInfo.request``, so ``on_connecting`` can read the host's session
cookie or anything its middlewares put on the request. The host starts and stops the node.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiohttp import web

from rotary.node.node import Node
from rotary.transports.admission import ConnectionRateLimiter, Handler, admitted
from rotary.transports.origins import origin_rule
from rotary.transports.routes import BodyRoute, ConnectionRoutes, WebSocketRoute, add_connection_routes
from rotary.transports.websocket import DEFAULT_MESSAGE_SIZE_LIMIT

DEFAULT_MAX_REQUEST_BODY_SIZE = 65536


def aiohttp_app(
    node: Node,
    *,
    allowed_origins: Sequence[str] | None = None,
    websocket: bool = True,
    http_stream: bool = True,
    sse: bool = True,
    emulation_path: str = "/emulation",
    message_size_limit: int = DEFAULT_MESSAGE_SIZE_LIMIT,
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE,
    connection_limit: int = 0,
    connection_rate_limit: int = 0,
) -> web.Application:
    """The sub-app serving ``node``'s connections.

    ``allowed_origins``: Centrifugo's ``client.allowed_origins`` patterns; None (the default) admits
    pages of the host itself only (an Origin naming the request's Host) and clients that send no
    Origin. ``emulation_path`` is where HTTP-streaming and SSE clients post their commands (the
    ``emulationEndpoint`` of centrifuge-js, under the mount's prefix). ``connection_limit`` and
    ``connection_rate_limit`` (0: none) answer 503 as Centrifugo's ``client`` keys of the same names.
    """
    rule = origin_rule(allowed_origins)
    limiter = ConnectionRateLimiter(connection_rate_limit, time.monotonic) if connection_rate_limit else None

    def check_origin(request: web.Request) -> bool:
        return rule(request.headers.get("Origin", ""), request.host)

    def gate(handler: Handler) -> Handler:
        return admitted(handler, node, limiter, lambda: connection_limit)

    routes = ConnectionRoutes(
        websocket=WebSocketRoute(message_size_limit=message_size_limit) if websocket else None,
        http_stream=BodyRoute("/connection/http_stream", max_request_body_size) if http_stream else None,
        sse=BodyRoute("/connection/sse", max_request_body_size) if sse else None,
        emulation=BodyRoute(emulation_path, max_request_body_size),
        host_request=True,
    )
    app = web.Application(client_max_size=max(message_size_limit, max_request_body_size, 1 << 20))
    add_connection_routes(app, node, routes, check_origin, gate)
    return app
