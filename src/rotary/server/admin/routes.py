"""The admin endpoints under ``admin.handler_prefix``, answering as Centrifugo's do.

- ``<prefix>/admin/init`` (any method): ``{"authenticated", "edition", "insecure"}`` for the UI.
- ``<prefix>/admin/auth`` (POST, form field ``password``): ``{"token": ...}``, or 400 "Bad Request"
  for a wrong password or when ``admin.password`` or ``admin.secret`` is unset.
- ``<prefix>/admin/api`` (POST, ``Authorization: token <admin token>``): the legacy API format
  (``server/api/legacy.py``) run by the HTTP API's executor; 401 without a valid token unless
  ``admin.insecure``.
- ``<prefix>/`` and below: the UI's files.

Register these last on their application: the file route catches every path under the prefix.
See https://centrifugal.dev/docs/server/admin_web.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import orjson
from aiohttp import web

from rotary.node.node import Node
from rotary.server.admin import token
from rotary.server.admin.files import BuiltinFiles, DirectoryFiles, Files
from rotary.server.api.executor import ApiExecutor
from rotary.server.api.http import Handler, legacy_response
from rotary.server.config.schema import AdminConfig

log = logging.getLogger("rotary.server.admin")

Clock = Callable[[], float]
"""Wall-clock seconds, which the admin token's timestamp counts in."""

AUTH_SCHEME: Final = "token"
MAX_FORM_SIZE: Final = 1 << 20
"""Bytes of login form Centrifugo reads (http.MaxBytesReader); a larger one is a wrong password."""

FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")

BUILTIN_UI_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
"""rotary's UI loads nothing but its own files, and no other site may frame it."""


def register_admin(
    app: web.Application, executor: ApiExecutor, node: Node, settings: AdminConfig, clock: Clock = time.time
) -> None:
    """Adds the admin routes to ``app``; call it after every other route of ``app``."""
    if settings.insecure:
        log.warning("INSECURE admin mode enabled, make sure you understand risks")
    prefix = settings.handler_prefix.rstrip("/")
    files: Files = DirectoryFiles(Path(settings.web_path)) if settings.web_path else BuiltinFiles()
    app.router.add_route("*", f"{prefix}/admin/init", _init_handler(settings, clock))
    app.router.add_route("*", f"{prefix}/admin/auth", _auth_handler(settings, clock))
    app.router.add_route("*", f"{prefix}/admin/api", _api_handler(executor, node, settings, clock))
    if prefix:
        app.router.add_route("*", prefix, _redirect_to(prefix + "/"))
    app.router.add_route("*", prefix + "/{path:.*}", _files_handler(files))


def _json(value: object) -> web.Response:
    """JSON with sorted keys and a final newline, as Go's json.Encoder writes a map."""
    body = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
    return web.Response(body=body, content_type="application/json")


def _bad_request() -> web.Response:
    """Go's ``http.Error(w, "Bad Request", 400)``."""
    return web.Response(
        status=400,
        text="Bad Request\n",
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _presented_token(request: web.Request) -> str:
    """The token of ``Authorization: token <t>``; "" for any other header."""
    parts = request.headers.get("Authorization", "").split()
    return parts[1] if len(parts) == 2 and parts[0].lower() == AUTH_SCHEME else ""


def _authenticated(request: web.Request, settings: AdminConfig, clock: Clock) -> bool:
    if settings.insecure:
        return True
    presented = _presented_token(request)
    return bool(presented) and token.valid(settings.secret, presented, int(clock()))


def _init_handler(settings: AdminConfig, clock: Clock) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return _json(
            {
                "authenticated": _authenticated(request, settings, clock),
                "edition": "oss",
                "insecure": settings.insecure,
            }
        )

    return handle


def _auth_handler(settings: AdminConfig, clock: Clock) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405)
        password = await _form_password(request)
        if not settings.password or not settings.secret:
            log.error("admin.password and admin.secret must be set in configuration")
            return _bad_request()
        if not _same(password, settings.password):
            log.info("admin login refused: wrong password")
            return _bad_request()
        return _json({"token": token.issue(settings.secret, int(clock()))})

    return handle


async def _form_password(request: web.Request) -> str:
    """The ``password`` form value as Go's ``FormValue`` finds it: the body's, else the query's."""
    value: object = None
    if request.content_type in FORM_TYPES and (request.content_length or 0) <= MAX_FORM_SIZE:
        try:
            value = (await request.post()).get("password")
        except (ValueError, web.HTTPException):  # malformed, or larger than its length said
            value = None
    if isinstance(value, str):
        return value
    return request.query.get("password", "")


def _same(supplied: str, expected: str) -> bool:
    return hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), expected.encode())


def _api_handler(executor: ApiExecutor, node: Node, settings: AdminConfig, clock: Clock) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405)
        if not settings.insecure and not settings.secret:
            log.error("no admin secret key found in configuration")
            return web.Response(status=401)
        if not _authenticated(request, settings, clock):
            return web.Response(status=401)
        return await legacy_response(executor, node, request)

    return handle


def _redirect_to(location: str) -> Handler:
    """The prefix without its slash, redirected as Go's ServeMux does for a subtree pattern."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": location})

    return handle


def _files_handler(files: Files) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        found = files.find(path) if files.builtin else await asyncio.to_thread(files.find, path)
        if found is None:
            return web.Response(status=404, text="404 page not found\n")
        headers = BUILTIN_UI_HEADERS if files.builtin else {}
        return web.Response(body=found.body, headers={**headers, "Content-Type": found.content_type})

    return handle
