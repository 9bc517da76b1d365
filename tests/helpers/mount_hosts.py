"""Host applications that mount rotary's connection endpoints, as an application embeds them.

Each host has its own login: ``POST /login?user=<name>`` sets the host's session cookie, and the
node's ``on_connecting`` accepts a connection only when the host's request (``ConnectionInfo.request``)
carries that login. The Starlette host keeps it in Starlette's signed session cookie (SessionMiddleware
fills ``scope["session"]``, for WebSocket scopes too); the aiohttp host keeps its own session table
behind an opaque cookie. Both serve a page and centrifuge-js from their own origin and mount rotary
under ``/rt``. ``Relay`` sits between a client and a host so that a test can drop every connection
for real, as a network would.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from aiohttp import web
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from rotary.engines.base import PublishOptions
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.errors import DisconnectError
from rotary.node.hooks import ClientView, ConnectDecision, ConnectionInfo, PublishDecision, SubscribeOptions
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.transports.mounts.aiohttp_mount import aiohttp_app
from rotary.transports.mounts.asgi import asgi_app

REPO = Path(__file__).resolve().parents[2]
CENTRIFUGE_JS = REPO / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"
PREFIX = "/rt"
LOGIN_REQUIRED = codes.Disconnect(4503, "login required")
"""What a connection without the host's login gets (a code that tells the SDK not to reconnect)."""
HISTORY = PublishOptions(history_size=100, history_ttl=300)

UserOf = Callable[[object], "str | None"]
"""The logged-in user of the host's request, or None."""


class HostLoginHooks(AllowAllHooks):
    """Connects the host's logged-in user; channels keep history and are recoverable."""

    def __init__(self, user_of: UserOf) -> None:
        self._user_of = user_of
        self.requests: list[object] = []

    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        self.requests.append(conn.request)
        user = self._user_of(conn.request)
        if user is None:
            raise DisconnectError(LOGIN_REQUIRED)
        return ConnectDecision(user=user)

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(recoverable=True, positioned=True)

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision:
        info = pb.ClientInfo(user=client.user, client=client.id, conn_info=client.conn_info)
        options = PublishOptions(
            history_size=HISTORY.history_size, history_ttl=HISTORY.history_ttl, client_info=info
        )
        return PublishDecision(request.data, options)


def scope_user(request: object) -> str | None:
    """The Starlette host's login, from the session SessionMiddleware put in the ASGI scope."""
    if not isinstance(request, dict):
        return None
    user = request.get("session", {}).get("user")
    return user if isinstance(user, str) else None


class AiohttpSessions:
    """The aiohttp host's own sessions: an opaque cookie naming a user."""

    COOKIE = "host_session"

    def __init__(self) -> None:
        self.users: dict[str, str] = {}

    def user_of(self, request: object) -> str | None:
        if not isinstance(request, web.Request):
            return None
        return self.users.get(request.cookies.get(self.COOKIE, ""))


def starlette_host(node: Node, page: str = "", **mount_options: Any) -> Starlette:
    async def login(request: Request) -> Response:
        request.session["user"] = request.query_params["user"]
        return PlainTextResponse("logged in")

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def script(request: Request) -> Response:
        return FileResponse(CENTRIFUGE_JS)

    routes = [
        Route("/login", login, methods=["POST", "GET"]),
        Route("/", index),
        Route("/centrifuge.js", script),
        Mount(PREFIX, asgi_app(node, **mount_options)),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(SessionMiddleware, secret_key=secrets.token_hex(16))]
    )


def aiohttp_host(
    node: Node, sessions: AiohttpSessions, page: str = "", **mount_options: Any
) -> web.Application:
    async def login(request: web.Request) -> web.Response:
        token = secrets.token_urlsafe(16)
        sessions.users[token] = request.query["user"]
        response = web.Response(text="logged in")
        response.set_cookie(AiohttpSessions.COOKIE, token, httponly=True)
        return response

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(CENTRIFUGE_JS)

    app = web.Application()
    app.router.add_route("*", "/login", login)
    app.router.add_get("/", index)
    app.router.add_get("/centrifuge.js", script)
    app.add_subapp(PREFIX, aiohttp_app(node, **mount_options))
    return app


@contextlib.asynccontextmanager
async def serving_uvicorn(app: Any, port: int, **options: Any) -> AsyncIterator[None]:
    """A real uvicorn server in this event loop; the host, not ASGI lifespan, runs the node.
    ``options``: more of ``uvicorn.Config``'s (``ws``, ``ws_per_message_deflate``, ...)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", **options)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task


class Relay:
    """Forwards TCP connections from its own port to ``target``; ``cut`` drops them all at once."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._held = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._held:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    def cut(self, hold: bool = False) -> None:
        """Drops every relayed connection, with no goodbye to either side; with ``hold`` new ones are
        dropped too until ``release``, so that a test can act while the client is surely away."""
        self._held = hold
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def release(self) -> None:
        self._held = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.transport.abort()
