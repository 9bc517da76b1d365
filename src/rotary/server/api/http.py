"""The HTTP server API: ``POST <http_api.handler_prefix>/<method>`` and the legacy ``POST <prefix>``.

One generic handler serves every METHODS entry. Checks run in Centrifugo's order: the HTTP method
(405), the API key (401), then the body (400). A method's error is answered with HTTP 200 and
``{"error": {...}}``, or, in transport error mode, with the bare error under a mapped HTTP status.
See https://centrifugal.dev/docs/server/server_api#http-api.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from aiohttp import web

from rotary.node.node import Node
from rotary.server.api.codec import (
    LARGE_BODY,
    MalformedRequest,
    UnencodableResult,
    decode,
    encode,
    encode_error,
    parse_json,
)
from rotary.server.api.executor import ApiExecutor
from rotary.server.api.legacy import run_commands
from rotary.server.api.schema import METHODS, ApiError
from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import HttpAPIConfig

log = logging.getLogger("rotary.server.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ERROR_STATUS: Final[dict[int, int]] = {100: 500, 102: 404, 104: 404, 107: 400, 108: 400, 112: 416, 113: 409}
"""API error code -> HTTP status in transport error mode; any other code is 500."""

TRANSPORT_ERROR_MODE: Final = "transport"
ERROR_MODE_HEADER: Final = "X-Centrifugo-Error-Mode"
API_KEY_HEADER: Final = "X-API-Key"
API_KEY_SCHEME: Final = "apikey"
API_KEY_QUERY: Final = "api_key"


def register_api(app: web.Application, executor: ApiExecutor, node: Node, config: Config) -> None:
    """Adds the per-method routes and the legacy route under ``http_api.handler_prefix``."""
    settings = config.http_api
    prefix = settings.handler_prefix.rstrip("/")
    app.router.add_route("*", prefix or "/", _legacy_handler(executor, node, settings))
    for name in METHODS:
        app.router.add_route("*", f"{prefix}/{name}", _method_handler(executor, name, settings))
    app.router.add_route("*", prefix + "/{unknown:.*}", _not_found)


async def _not_found(request: web.Request) -> web.Response:
    """An unknown method: Go's ``http.NotFound`` answer, as Centrifugo's router gives it."""
    return web.Response(status=404, text="404 page not found\n")


def authorized(request: web.Request, key: str) -> bool:
    """The key from X-API-Key, else from ``Authorization: apikey <key>``, else from ``?api_key=``.

    An empty configured key authorizes nobody: the API is open only with ``http_api.insecure``.
    """
    if not key:
        return False
    supplied = request.headers.get(API_KEY_HEADER, "")
    if supplied:
        valid = _same(key, supplied)
    else:
        parts = request.headers.get("Authorization", "").split()
        valid = len(parts) == 2 and parts[0].lower() == API_KEY_SCHEME and _same(key, parts[1])
    if not valid and request.query_string:
        valid = _same(key, request.query.get(API_KEY_QUERY, ""))
    return valid


def _same(expected: str, supplied: str) -> bool:
    """Compares the bytes as sent: aiohttp keeps header bytes that are not UTF-8 as lone surrogates,
    which then match no configured key (401, as in Centrifugo) instead of failing to encode."""
    return hmac.compare_digest(expected.encode(), supplied.encode("utf-8", "surrogateescape"))


def _refusal(request: web.Request, settings: HttpAPIConfig) -> web.Response | None:
    if request.method != "POST":
        return web.Response(status=405)
    if not settings.insecure and not authorized(request, settings.key):
        return web.Response(status=401)
    return None


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def _bad_request(exc: MalformedRequest) -> web.Response:
    log.info("bad API request: %s", exc)
    return web.Response(status=400, text=f"Bad Request: {exc}")


def _internal_error(exc: Exception) -> web.Response:
    log.error("cannot encode API response: %s", exc)
    return web.Response(status=500, text="Internal Server Error")


def _transport_mode(request: web.Request, settings: HttpAPIConfig) -> bool:
    return (
        settings.error_mode == TRANSPORT_ERROR_MODE
        or request.headers.get(ERROR_MODE_HEADER) == TRANSPORT_ERROR_MODE
    )


def _error_response(error: ApiError, transport_mode: bool) -> web.Response:
    if transport_mode:
        return _json(encode_error(error), ERROR_STATUS.get(error.code, 500))
    return _json({"error": encode_error(error)})


def _method_handler(executor: ApiExecutor, name: str, settings: HttpAPIConfig) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        refusal = _refusal(request, settings)
        if refusal is not None:
            return refusal
        body = await request.read()
        return await method_response(executor, name, body, _transport_mode(request, settings))

    return handle


async def method_response(
    executor: ApiExecutor, name: str, body: bytes, transport_mode: bool
) -> web.Response:
    """The answer to an authorized ``POST`` of ``body`` to the method ``name`` (the reliability
    kit's fuzzer calls this in-process, on the same path as the route). A large body is decoded,
    and its result encoded, in a worker thread (codec.LARGE_BODY)."""
    spec = METHODS[name]
    large = len(body) >= LARGE_BODY
    try:
        if large:
            call = await asyncio.to_thread(_decode_body, spec.request, body)
        else:  # not through a shared awaitable helper: a coroutine per call costs more than the test
            call = _decode_body(spec.request, body)
    except MalformedRequest as exc:
        return _bad_request(exc)
    try:
        result = await executor.execute(name, call)
    except ApiError as error:
        return _error_response(error, transport_mode)
    try:
        if large:
            return _json(await asyncio.to_thread(_encode_result, result, spec.enveloped))
        return _json(_encode_result(result, spec.enveloped))
    except UnencodableResult as exc:
        return _internal_error(exc)


def _decode_body(request_type: type[Any], body: bytes) -> Any:
    return decode(request_type, parse_json(body))


def _encode_result(result: Any, enveloped: bool) -> Any:
    return {"result": encode(result)} if enveloped else encode(result)


def _legacy_handler(executor: ApiExecutor, node: Node, settings: HttpAPIConfig) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        refusal = _refusal(request, settings)
        if refusal is not None:
            return refusal
        return await legacy_response(executor, node, request)

    return handle


async def legacy_response(executor: ApiExecutor, node: Node, request: web.Request) -> web.Response:
    """The legacy route's answer to an authorized POST; the admin API answers with it too."""
    return await legacy_body_response(executor, node, await request.read())


async def legacy_body_response(executor: ApiExecutor, node: Node, body: bytes) -> web.Response:
    """The legacy route's answer to an authorized ``POST`` of ``body`` (newline-separated commands)."""
    if node.closing:
        return web.Response(status=503)
    try:
        answer = await run_commands(executor, body)
    except MalformedRequest as exc:
        return _bad_request(exc)
    except UnencodableResult as exc:
        return _internal_error(exc)
    return web.Response(body=answer, content_type="application/json")
