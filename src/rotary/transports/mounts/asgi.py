"""An ASGI application serving a Node's connections, for Starlette, FastAPI, Django or any ASGI host.

Plain ASGI 3 (no framework needed at run time): the bidirectional WebSocket at
``/connection/websocket``, HTTP streaming at ``/connection/http_stream``, SSE at ``/connection/sse``
and the emulation endpoint at ``/emulation``, Centrifugo's paths
(https://centrifugal.dev/docs/transports/overview), under whatever prefix the host mounts it at
(``Mount("/rt", app)`` in Starlette, ``app.mount("/rt", ...)`` in FastAPI, a path test in a Django
``asgi.py``). Hooks see the ASGI scope in ``ConnectionInfo.request``: the host's middlewares have
filled it (``scope["session"]``, ``scope["user"]``) and its cookies are in its headers, so
``on_connecting`` can reuse the host's login. The host starts and stops the node; the lifespan
protocol is answered, and does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from rotary.node.node import Node
from rotary.transports.admission import ConnectionRateLimiter, admits
from rotary.transports.mounts.asgi_http import Request, respond, serve_emulation, serve_http_stream, serve_sse
from rotary.transports.mounts.asgi_send import Message, Receive, Scope, Send
from rotary.transports.mounts.asgi_websocket import SharedMessages, WebSocketOptions, serve_websocket
from rotary.transports.origins import origin_rule
from rotary.transports.websocket import DEFAULT_MESSAGE_SIZE_LIMIT, DEFAULT_WRITE_TIMEOUT

DEFAULT_MAX_REQUEST_BODY_SIZE = 65536
WEBSOCKET_PATH = "/connection/websocket"
HTTP_STREAM_PATH = "/connection/http_stream"
SSE_PATH = "/connection/sse"

HttpEndpoint = Callable[[Request, Node, int], Awaitable[None]]


class AsgiApp:
    """The ASGI callable :func:`asgi_app` returns."""

    def __init__(
        self,
        node: Node,
        *,
        allowed_origins: Sequence[str] | None,
        websocket: bool,
        http_stream: bool,
        sse: bool,
        emulation_path: str,
        message_size_limit: int,
        max_request_body_size: int,
        connection_limit: int,
        connection_rate_limit: int,
        write_timeout: float,
    ) -> None:
        self.node = node
        self._origin = origin_rule(allowed_origins)
        self._limiter = (
            ConnectionRateLimiter(connection_rate_limit, time.monotonic) if connection_rate_limit else None
        )
        self._connection_limit = connection_limit
        self._websocket = WebSocketOptions(message_size_limit, write_timeout) if websocket else None
        self._shared = SharedMessages()
        self._body_limit = max_request_body_size
        self._http: dict[str, tuple[HttpEndpoint, bool]] = {}
        """Path -> (endpoint, behind the admission checks)."""
        if http_stream:
            self._http[HTTP_STREAM_PATH] = (serve_http_stream, True)
        if sse:
            self._http[SSE_PATH] = (serve_sse, True)
        if http_stream or sse:
            self._http[emulation_path.rstrip("/") or "/"] = (serve_emulation, False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        path = _route_path(scope, (WEBSOCKET_PATH, *self._http))
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        allowed = self._origin(headers.get("origin", ""), headers.get("host", ""))
        request = Request(scope, receive, send, headers, allowed)
        if kind == "websocket":
            await self._websocket_scope(request, path)
        elif kind == "http":
            await self._http_scope(request, path)

    async def _websocket_scope(self, request: Request, path: str) -> None:
        if (await request.receive())["type"] != "websocket.connect":
            return
        if path != WEBSOCKET_PATH or self._websocket is None:
            await _deny(request, 404, "Not Found")
        elif not self._admits():
            await _deny(request, 503, "Service Unavailable")
        elif not request.origin_allowed:
            await _deny(request, 403, "Forbidden")
        else:
            await serve_websocket(
                request.scope,
                request.receive,
                request.send,
                self.node,
                self._websocket,
                self._shared,
                request.headers,
            )

    async def _http_scope(self, request: Request, path: str) -> None:
        route = self._http.get(path)
        if route is None:
            status, text = (
                (400, "WebSocket upgrade expected") if path == WEBSOCKET_PATH else (404, "Not Found")
            )
            await respond(request, status, text)
            return
        endpoint, gated = route
        if gated and not self._admits():
            await respond(request, 503, "Service Unavailable")
            return
        await endpoint(request, self.node, self._body_limit)

    def _admits(self) -> bool:
        return admits(self.node, self._limiter, lambda: self._connection_limit)


def asgi_app(
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
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
) -> AsgiApp:
    """The ASGI app serving ``node``'s connections; the options are :func:`aiohttp_app`'s.

    ``allowed_origins``: Centrifugo's ``client.allowed_origins`` patterns; None (the default) admits
    pages of the host itself only (an Origin naming the request's Host) and clients that send no
    Origin. ``emulation_path`` is where HTTP-streaming and SSE clients post their commands (the
    ``emulationEndpoint`` of centrifuge-js, under the mount's prefix). ``connection_limit`` and
    ``connection_rate_limit`` (0: none) answer 503 as Centrifugo's ``client`` keys of the same names.
    ``write_timeout``: seconds a closing connection may take to send its close.
    """
    return AsgiApp(
        node,
        allowed_origins=allowed_origins,
        websocket=websocket,
        http_stream=http_stream,
        sse=sse,
        emulation_path=emulation_path,
        message_size_limit=message_size_limit,
        max_request_body_size=max_request_body_size,
        connection_limit=connection_limit,
        connection_rate_limit=connection_rate_limit,
        write_timeout=write_timeout,
    )


def _route_path(scope: Scope, routes: Sequence[str]) -> str:
    """The path below the mount: without ``root_path`` where the host set it, else the route the
    path ends with (a host that dispatches by prefix and passes its scope on unchanged)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    path = path.rstrip("/") or "/"
    if path in routes:
        return path
    return next((route for route in routes if path.endswith(route)), path)


async def _deny(request: Request, status: int, text: str) -> None:
    """Refuses a WebSocket handshake with an HTTP answer where the server can send one (the ASGI
    ``websocket.http.response`` extension), else with a close before accepting (403)."""
    if "websocket.http.response" in request.scope.get("extensions", {}):
        fields = [(b"content-type", b"text/plain; charset=utf-8")]
        await request.send({"type": "websocket.http.response.start", "status": status, "headers": fields})
        await request.send({"type": "websocket.http.response.body", "body": text.encode()})
    else:
        await request.send({"type": "websocket.close", "code": 1008})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
