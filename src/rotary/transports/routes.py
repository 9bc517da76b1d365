"""The connection endpoints of an aiohttp application, wired in one place.

``rotary serve`` builds a :class:`ConnectionRoutes` from its config (server/app.py) and the aiohttp
mount builds one from its keyword arguments (mounts/aiohttp_mount.py); both hand it to
:func:`add_connection_routes`, so the two serve the same handlers in the same order. Every endpoint
but the emulation one sits behind ``gate`` (the node's admission checks, transports/admission.py).
Paths are Centrifugo's (https://centrifugal.dev/docs/transports/overview).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from rotary.node.node import Node
from rotary.protocol.deflate import MessageDeflater
from rotary.transports.conn_init import Gate, conn_init_handler
from rotary.transports.emulation import emulation_handler
from rotary.transports.http_stream import http_stream_handler
from rotary.transports.sockjs import SockJSEndpoint, sockjs_routes
from rotary.transports.sse import sse_handler
from rotary.transports.stream import OriginCheck
from rotary.transports.uni_connect import CodeToHTTPResponse
from rotary.transports.uni_http_stream import uni_http_stream_handler
from rotary.transports.uni_sse import uni_sse_handler
from rotary.transports.uni_websocket import UniWebSocketOptions, uni_websocket_endpoint, uni_websocket_handler
from rotary.transports.websocket import DEFAULT_MESSAGE_SIZE_LIMIT, DEFAULT_WRITE_TIMEOUT, websocket_handler
from rotary.transports.ws_connection import own_websocket_handler, websocket_endpoint
from rotary.transports.ws_protocol import WebSocketEndpoint


@dataclass(frozen=True, slots=True)
class WebSocketRoute:
    path: str = "/connection/websocket"
    message_size_limit: int = DEFAULT_MESSAGE_SIZE_LIMIT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    compression: MessageDeflater | None = None
    decompressed_message_size_limit: int = 0
    own_protocol: bool = False
    """Served by rotary's own protocol after the upgrade (transports/ws_connection.py), not by
    aiohttp's handler; never for a mount, whose hooks see the host's request."""


@dataclass(frozen=True, slots=True)
class BodyRoute:
    """An endpoint reading a request body of at most ``max_request_body_size`` bytes (0: 65536)."""

    path: str
    max_request_body_size: int = 0


@dataclass(frozen=True, slots=True)
class UniStreamRoute:
    path: str
    max_request_body_size: int = 0
    http_rules: tuple[CodeToHTTPResponse, ...] | None = None
    """``connect_code_to_http_response``: connect refusals answered with an HTTP status."""


@dataclass(frozen=True, slots=True)
class UniWebSocketRoute:
    path: str
    options: UniWebSocketOptions = field(default_factory=UniWebSocketOptions)


@dataclass(frozen=True, slots=True)
class SockJSRoute:
    prefix: str
    url: str
    heartbeat_delay: float
    message_size_limit: int


@dataclass(frozen=True, slots=True)
class ConnectionRoutes:
    """Which connection endpoints an application serves (None: not served), and where."""

    websocket: WebSocketRoute | None = WebSocketRoute()
    http_stream: BodyRoute | None = None
    sse: BodyRoute | None = None
    emulation: BodyRoute = BodyRoute("/emulation")
    """Served whenever HTTP streaming or SSE is, as Centrifugo does."""
    uni_websocket: UniWebSocketRoute | None = None
    uni_sse: UniStreamRoute | None = None
    uni_http_stream: UniStreamRoute | None = None
    sockjs: SockJSRoute | None = None
    init: str | None = None
    """The path of the connection init endpoint."""
    host_request: bool = False
    """Hooks see the aiohttp request (``ConnectionInfo.request``): the app is mounted in a host's."""


def route_path(prefix: str) -> str:
    """Centrifugo's path of a handler prefix: trailing slashes dropped, "" meaning "/"."""
    return prefix.rstrip("/") or "/"


def add_connection_routes(
    app: web.Application, node: Node, routes: ConnectionRoutes, check_origin: OriginCheck, gate: Gate
) -> WebSocketEndpoint | None:
    """Adds the endpoints ``routes`` names to ``app``; returns the WebSocket endpoint when rotary's
    own protocol serves it (the standalone server's front door takes upgrades to it too)."""
    endpoint = None
    if routes.websocket is not None and routes.websocket.own_protocol and not routes.host_request:
        ws = routes.websocket
        endpoint = websocket_endpoint(
            node, ws.message_size_limit, ws.decompressed_message_size_limit, ws.write_timeout
        )
        app.on_shutdown.append(endpoint.shutdown)
        own = own_websocket_handler(node, endpoint, check_origin=check_origin, compression=ws.compression)
        app.router.add_get(ws.path, gate(own))
    elif routes.websocket is not None:
        ws = routes.websocket
        handler = websocket_handler(
            node,
            message_size_limit=ws.message_size_limit,
            check_origin=check_origin,
            write_timeout=ws.write_timeout,
            compression=ws.compression,
            decompressed_message_size_limit=ws.decompressed_message_size_limit,
            host_request=routes.host_request,
        )
        app.router.add_get(ws.path, gate(handler))
    _add_emulation(app, node, routes, check_origin, gate)
    _add_unidirectional(app, node, routes, check_origin, gate)
    if routes.sockjs is not None:
        sockjs = SockJSEndpoint(
            node,
            sockjs_url=routes.sockjs.url,
            heartbeat_delay=routes.sockjs.heartbeat_delay,
            message_size_limit=routes.sockjs.message_size_limit,
            check_origin=check_origin,
            gate=gate,
        )
        sockjs_routes(app, routes.sockjs.prefix, sockjs)
    if routes.init is not None:
        app.router.add_route("*", routes.init, conn_init_handler(check_origin, gate))
    return endpoint


def _add_emulation(
    app: web.Application, node: Node, routes: ConnectionRoutes, check_origin: OriginCheck, gate: Gate
) -> None:
    """HTTP streaming and SSE, and the emulation endpoint whenever either is on."""
    if routes.http_stream is not None:
        limit = routes.http_stream.max_request_body_size
        stream = http_stream_handler(
            node, max_request_body_size=limit, check_origin=check_origin, host_request=routes.host_request
        )
        app.router.add_route("*", routes.http_stream.path, gate(stream))
    if routes.sse is not None:
        limit = routes.sse.max_request_body_size
        sse = sse_handler(
            node, max_request_body_size=limit, check_origin=check_origin, host_request=routes.host_request
        )
        app.router.add_route("*", routes.sse.path, gate(sse))
    if routes.http_stream is not None or routes.sse is not None:
        limit = routes.emulation.max_request_body_size
        emulation = emulation_handler(node, max_request_body_size=limit, check_origin=check_origin)
        app.router.add_route("*", routes.emulation.path, emulation)


def _add_unidirectional(
    app: web.Application, node: Node, routes: ConnectionRoutes, check_origin: OriginCheck, gate: Gate
) -> None:
    """Routes of the enabled unidirectional transports."""
    if routes.uni_websocket is not None:
        options = routes.uni_websocket.options
        endpoint = uni_websocket_endpoint(node, options)
        app.on_shutdown.append(endpoint.shutdown)
        handler = uni_websocket_handler(endpoint, options, check_origin=check_origin)
        app.router.add_get(routes.uni_websocket.path, gate(handler))
    if routes.uni_sse is not None:
        sse = routes.uni_sse
        handler = uni_sse_handler(
            node,
            max_request_body_size=sse.max_request_body_size,
            http_rules=sse.http_rules,
            check_origin=check_origin,
        )
        app.router.add_route("*", sse.path, gate(handler))
    if routes.uni_http_stream is not None:
        stream = routes.uni_http_stream
        handler = uni_http_stream_handler(
            node,
            max_request_body_size=stream.max_request_body_size,
            http_rules=stream.http_rules,
            check_origin=check_origin,
        )
        app.router.add_route("*", stream.path, gate(handler))
