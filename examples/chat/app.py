"""A chat on FastAPI with rotary mounted: the host's own login, presence and history.

The FastAPI application owns the users: ``POST /login`` puts a name in Starlette's signed session
cookie (SessionMiddleware), and rotary, mounted at ``/rotary`` with ``rotary.mount.asgi_app``,
connects the browser's centrifuge-js without any token: ``on_connecting`` reads the session from the
ASGI scope the host's middleware filled (``ConnectingEvent.request``). Rooms are channels
``chat:<room>`` keeping presence (who is in the room), join/leave pushes and the last 50 messages
(history on join, recovery of what was missed while a connection was down). ``on_publish`` checks
what a client sends and stamps its author, so nobody writes in another's name.

Run it with ``python -m examples.chat`` (see README.md beside this file).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware

import rotary
from rotary import ChannelOptions, ConnectReply, Node, PublishReply
from rotary.mount import asgi_app

HERE = Path(__file__).parent
CENTRIFUGE_JS = Path(
    os.environ.get(
        "CENTRIFUGE_JS", HERE.parents[1] / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"
    )
)
"""The browser SDK, from npm (``npm install centrifuge``): the page loads nothing from a CDN."""

PREFIX = "/rotary"
"""Where rotary's connection endpoints live in this application."""
ROOM = re.compile(r"chat:[a-z0-9_-]{1,32}")
NAME = re.compile(r"\w[\w .-]{0,31}")
MAX_TEXT = 1000
ROOMS = ChannelOptions(
    presence=True,
    join_leave=True,
    force_push_join_leave=True,
    history_size=50,
    history_ttl=24 * 3600,
    force_recovery=True,
)
"""Every room: who is in it, join/leave pushes to all, the last 50 messages for a day, and
recovery of missed messages after a reconnect."""


def logged_in_user(request: object) -> str | None:
    """The user the host's session names: the ASGI scope of the connection's request carries the
    session SessionMiddleware decoded from the signed cookie (WebSocket scopes too)."""
    if not isinstance(request, dict):
        return None
    session = request.get("session")
    user = session.get("user") if isinstance(session, dict) else None
    return user if isinstance(user, str) else None


def chat_node() -> Node:
    """The chat's node with its hooks: who connects, which rooms exist, what a message is."""
    node = Node(channel_options=lambda channel: ROOMS if ROOM.fullmatch(channel) else ChannelOptions())

    @node.on_connecting
    async def connecting(event: rotary.ConnectingEvent) -> ConnectReply:
        user = logged_in_user(event.request)
        if user is None:
            raise rotary.Unauthorized()
        return ConnectReply(user=user, info={"name": user})

    @node.on_subscribe
    async def subscribe(event: rotary.SubscribeEvent) -> None:
        if not ROOM.fullmatch(event.channel):
            raise rotary.UnknownChannel()

    @node.on_publish
    async def publish(event: rotary.PublishEvent) -> PublishReply:
        text = event.data.get("text") if isinstance(event.data, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise rotary.BadRequest()
        return PublishReply(data={"user": event.user, "text": text.strip()})

    return node


class Login(BaseModel):
    name: str


def create_app(node: Node | None = None, secret_key: str | None = None) -> FastAPI:
    """The FastAPI application; it starts and stops the node with its own lifespan.

    ``secret_key`` signs the session cookie (``CHAT_SECRET``, else a new one at every start)."""
    node = node or chat_node()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with node:
            yield

    app = FastAPI(title="rotary chat", lifespan=lifespan)
    app.state.node = node
    secret = secret_key or os.environ.get("CHAT_SECRET") or secrets.token_hex(32)
    app.add_middleware(SessionMiddleware, secret_key=secret, same_site="strict")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return (HERE / "static" / "index.html").read_text()

    @app.get("/centrifuge.js")
    async def centrifuge_js() -> FileResponse:
        if not CENTRIFUGE_JS.is_file():
            raise HTTPException(404, "centrifuge-js not found: run `npm install` (or set CENTRIFUGE_JS)")
        return FileResponse(CENTRIFUGE_JS, media_type="text/javascript")

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return {"user": request.session.get("user")}

    @app.post("/login")
    async def login(body: Login, request: Request) -> dict[str, Any]:
        name = body.name.strip()
        if not NAME.fullmatch(name):
            raise HTTPException(400, "a name is 1 to 32 letters, digits, spaces, dots or dashes")
        request.session["user"] = name
        return {"user": name}

    @app.post("/logout")
    async def logout(request: Request) -> dict[str, Any]:
        user = request.session.pop("user", None)
        if user is not None:  # the user's open tabs leave too (4500: the SDK does not reconnect)
            await node.disconnect(user, rotary.Disconnect(4500, "logged out"))
        return {"user": None}

    app.mount(PREFIX, asgi_app(node))
    return app


app = create_app()
"""What ``uvicorn examples.chat.app:app`` serves."""
