"""The connection endpoints a config turns on, as routes: which transports, at which paths, with
which limits, compression and ``connect_code_to_*`` transforms. The server (app.py) adds them to its
external application (transports/routes.py); this module only reads the config.
See https://centrifugal.dev/docs/transports/overview.
"""

from __future__ import annotations

import logging
import os

from rotary.protocol.deflate import DEFAULT_LEVEL, MessageDeflater, valid_level
from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import (
    ConnectCodeToHTTPResponse,
    UniHTTPStreamConfig,
    UniSSEConfig,
    WebSocketOptions,
)
from rotary.transports.routes import (
    BodyRoute,
    ConnectionRoutes,
    SockJSRoute,
    UniStreamRoute,
    UniWebSocketRoute,
    WebSocketRoute,
    route_path,
)
from rotary.transports.uni_connect import CodeToHTTPResponse
from rotary.transports.uni_websocket import (
    DEFAULT_FRAME_PING_INTERVAL,
    DEFAULT_FRAME_PONG_TIMEOUT,
    UniWebSocketOptions,
)
from rotary.transports.websocket import DEFAULT_WRITE_TIMEOUT

log = logging.getLogger("rotary.server")

WEBSOCKET_SERVER_VARIABLE = "ROTARY_WEBSOCKET_SERVER"
"""``own`` (the default) or ``aiohttp``: what serves a bidirectional WebSocket after its upgrade."""


def _deflater(options: WebSocketOptions, section: str) -> MessageDeflater | None:
    """The shared compressor of a WebSocket endpoint, or None when compression is off.

    Centrifugo logs an out-of-range `compression_level` and keeps compressing at its default
    level, so rotary does the same rather than refusing to start.
    """
    if not options.compression:
        return None
    if not valid_level(options.compression_level):
        log.error(
            "%s.compression_level %d is out of range (-2..9), using %d",
            section,
            options.compression_level,
            DEFAULT_LEVEL,
        )
    return MessageDeflater(options.compression_level, options.compression_min_size)


def own_websocket_protocol() -> bool:
    """Whether ``/connection/websocket`` leaves aiohttp after the upgrade (decision 27): not a
    Centrifugo setting but a private switch, so benchmarks and tests can compare both paths."""
    return os.environ.get(WEBSOCKET_SERVER_VARIABLE, "own") != "aiohttp"


def connection_routes(config: Config) -> ConnectionRoutes:
    """The connection endpoints ``config`` turns on, where it puts them."""
    websocket = config.websocket
    http_stream, sse = config.http_stream, config.sse
    sockjs = config.sockjs
    return ConnectionRoutes(
        websocket=None
        if websocket.disabled
        else WebSocketRoute(
            websocket.handler_prefix,
            websocket.message_size_limit,
            websocket.write_timeout,
            _deflater(websocket, "websocket"),
            websocket.decompressed_message_size_limit,
            own_websocket_protocol(),
        ),
        http_stream=BodyRoute(route_path(http_stream.handler_prefix), http_stream.max_request_body_size)
        if http_stream.enabled
        else None,
        sse=BodyRoute(route_path(sse.handler_prefix), sse.max_request_body_size) if sse.enabled else None,
        emulation=BodyRoute(
            route_path(config.emulation.handler_prefix), config.emulation.max_request_body_size
        ),
        uni_websocket=_uni_websocket(config),
        uni_sse=_uni_stream(config.uni_sse) if config.uni_sse.enabled else None,
        uni_http_stream=_uni_stream(config.uni_http_stream) if config.uni_http_stream.enabled else None,
        sockjs=SockJSRoute(
            sockjs.handler_prefix, sockjs.url, sockjs.heartbeat_delay, websocket.message_size_limit
        )
        if sockjs.enabled
        else None,
        init=route_path(config.init.handler_prefix) if config.init.enabled else None,
    )


def _uni_websocket(config: Config) -> UniWebSocketRoute | None:
    uni_ws = config.uni_websocket
    if not uni_ws.enabled:
        return None
    options = UniWebSocketOptions(
        message_size_limit=uni_ws.message_size_limit or 65536,
        write_timeout=uni_ws.write_timeout or DEFAULT_WRITE_TIMEOUT,
        join_push_messages=uni_ws.join_push_messages,
        disable_closing_handshake=uni_ws.disable_closing_handshake,
        disable_disconnect_push=uni_ws.disable_disconnect_push,
        ping_interval=config.client.ping_interval or DEFAULT_FRAME_PING_INTERVAL,
        pong_timeout=config.client.pong_timeout or DEFAULT_FRAME_PONG_TIMEOUT,
        compression=_deflater(uni_ws, "uni_websocket"),
        decompressed_message_size_limit=uni_ws.decompressed_message_size_limit,
    )
    return UniWebSocketRoute(route_path(uni_ws.handler_prefix), options)


def _uni_stream(section: UniSSEConfig | UniHTTPStreamConfig) -> UniStreamRoute:
    rules = _http_rules(section.connect_code_to_http_response)
    return UniStreamRoute(route_path(section.handler_prefix), section.max_request_body_size, rules)


def _http_rules(section: ConnectCodeToHTTPResponse) -> tuple[CodeToHTTPResponse, ...] | None:
    if not section.enabled:
        return None
    return tuple(CodeToHTTPResponse(t.code, t.to.status_code, t.to.body) for t in section.transforms)
