"""The Centrifugo-compatible server: builds the Node, the engines and the HTTP endpoints from a
Config, and owns startup and shutdown order.

All endpoints share one port, as in Centrifugo; API and health move to a second listener when
http_server.internal_port is set (https://centrifugal.dev/docs/server/configuration#http_server).
Shutdown: stop accepting, close clients with 3001 in batches, finish API calls, close the engines.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from grpc import aio  # type: ignore[import-untyped]

from rotary.engines.base import EngineError
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes
from rotary.server.channels import ChannelRules
from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import ConnectCodeToHTTPResponse
from rotary.server.engines import build_engines, engine_keys
from rotary.server.hooks import ServerHooks
from rotary.server.http_deadlines import CENTRIFUGO_HTTP_TIMEOUTS, HttpTimeouts, ReadDeadlines
from rotary.server.origins import origin_checker
from rotary.server.pem import read_pem
from rotary.server.reload import reload_not_supported
from rotary.server.tokens import TokenVerifier
from rotary.transports.admission import Clock, ConnectionRateLimiter, Handler, admitted
from rotary.transports.conn_init import conn_init_handler
from rotary.transports.emulation import emulation_handler
from rotary.transports.http_stream import http_stream_handler
from rotary.transports.sockjs import SockJSEndpoint, sockjs_routes
from rotary.transports.sse import sse_handler
from rotary.transports.stream import OriginCheck
from rotary.transports.uni_connect import CodeToHTTPResponse
from rotary.transports.uni_grpc import UniGrpcTLS, start_uni_grpc
from rotary.transports.uni_http_stream import uni_http_stream_handler
from rotary.transports.uni_sse import uni_sse_handler
from rotary.transports.uni_websocket import (
    DEFAULT_FRAME_PING_INTERVAL,
    DEFAULT_FRAME_PONG_TIMEOUT,
    UniWebSocketOptions,
    uni_websocket_handler,
)
from rotary.transports.websocket import DEFAULT_WRITE_TIMEOUT, websocket_handler

log = logging.getLogger("rotary.server")

UNI_GRPC_GRACE = 1.0
"""Seconds uni_grpc streams get at shutdown to send what the node's 3001 left them."""


def node_config(config: Config) -> NodeConfig:
    c = config.client
    name = config.node.name or f"{socket.gethostname()}_{config.http_server.port}"
    return NodeConfig(
        name=name,
        channel_limit=c.channel_limit,
        user_connection_limit=c.user_connection_limit,
        queue_max_size=c.queue_max_size,
        history_max_publication_limit=c.history_max_publication_limit,
        recovery_max_publication_limit=c.recovery_max_publication_limit,
        stale_close_delay=c.stale_close_delay,
        ping_interval=c.ping_interval,
        pong_timeout=c.pong_timeout,
        expired_close_delay=c.expired_close_delay,
        expired_sub_close_delay=c.expired_sub_close_delay,
        connect_include_server_time=c.connect_include_server_time,
        presence_update_interval=c.presence_update_interval,
        position_check_interval=c.channel_position_check_delay,
        unidirectional_code_to_disconnect=_uni_disconnects(config),
    )


def _uni_disconnects(config: Config) -> dict[int, codes.Disconnect]:
    rules = config.client.connect_code_to_unidirectional_disconnect
    if not rules.enabled:
        return {}
    return {rule.code: codes.Disconnect(rule.to.code, rule.to.reason) for rule in rules.transforms}


class StartError(Exception):
    """The server cannot start for a reason outside the config file's reach (a port taken, an engine
    unreachable); the message names the config key involved, and the process exits with it."""


@dataclass(slots=True)
class Server:
    """A built server: its node and the aiohttp applications for the external and internal port."""

    config: Config
    node: Node
    verifier: TokenVerifier
    external: web.Application
    internal: web.Application | None
    deadlines: ReadDeadlines


async def _health(request: web.Request) -> web.Response:
    return web.json_response({})


def _route(prefix: str) -> str:
    """Centrifugo's path of a handler prefix: trailing slashes dropped, "" meaning "/"."""
    return prefix.rstrip("/") or "/"


Gate = Callable[[Handler], Handler]
"""Puts a connection endpoint behind the node's admission checks (transports/admission.py)."""


def _add_emulation(
    app: web.Application,
    node: Node,
    config: Config,
    check_origin: OriginCheck,
    gate: Gate,
) -> None:
    """HTTP streaming and SSE, and the emulation endpoint whenever either is on, as Centrifugo does."""
    if config.http_stream.enabled:
        stream = http_stream_handler(
            node,
            max_request_body_size=config.http_stream.max_request_body_size,
            check_origin=check_origin,
        )
        app.router.add_route("*", _route(config.http_stream.handler_prefix), gate(stream))
    if config.sse.enabled:
        sse = sse_handler(
            node,
            max_request_body_size=config.sse.max_request_body_size,
            check_origin=check_origin,
        )
        app.router.add_route("*", _route(config.sse.handler_prefix), gate(sse))
    if config.http_stream.enabled or config.sse.enabled:
        emulation = emulation_handler(
            node, max_request_body_size=config.emulation.max_request_body_size, check_origin=check_origin
        )
        app.router.add_route("*", _route(config.emulation.handler_prefix), emulation)


def build_server(
    config: Config, *, clock: Clock = time.monotonic, http_timeouts: HttpTimeouts = CENTRIFUGO_HTTP_TIMEOUTS
) -> Server:
    """Everything ``serve`` runs. Tests pass their own ``clock`` (it drives the connection rate
    limit) and shorter ``http_timeouts``."""
    deadlines = ReadDeadlines(http_timeouts)
    verifier = TokenVerifier(
        config.client.token,
        config.client.subscription_token,
        skip_signature=config.client.insecure_skip_token_signature_verify,
    )
    rules = ChannelRules(config.channel)
    engines = build_engines(config)
    node = Node(
        node_config(config),
        hooks=ServerHooks(config, verifier),
        broker=engines.broker,
        presence_manager=engines.presence_manager,
        controller=engines.controller,
    )
    external = web.Application(
        client_max_size=max(config.websocket.message_size_limit, 1 << 20), middlewares=[deadlines.middleware]
    )
    internal = (
        web.Application(middlewares=[deadlines.middleware]) if config.http_server.internal_port else None
    )
    check_origin = origin_checker(config.client.allowed_origins)
    limiter = _rate_limiter(config.client.connection_rate_limit, clock)

    def gate(handler: Handler) -> Handler:
        return admitted(handler, node, limiter, config.client.connection_limit)

    if not config.websocket.disabled:
        handler = websocket_handler(
            node,
            message_size_limit=config.websocket.message_size_limit,
            check_origin=check_origin,
            write_timeout=config.websocket.write_timeout,
        )
        external.router.add_get(config.websocket.handler_prefix, gate(handler))
    _add_emulation(external, node, config, check_origin, gate)
    _add_unidirectional(external, node, config, check_origin, gate)
    if config.sockjs.enabled:
        sockjs = SockJSEndpoint(
            node,
            sockjs_url=config.sockjs.url,
            heartbeat_delay=config.sockjs.heartbeat_delay,
            message_size_limit=config.websocket.message_size_limit,
            check_origin=check_origin,
            gate=gate,
        )
        sockjs_routes(external, config.sockjs.handler_prefix, sockjs)
    if config.init.enabled:
        init = conn_init_handler(check_origin, gate)
        external.router.add_route("*", _route(config.init.handler_prefix), init)
    internal_app = internal or external
    if not config.http_api.disabled:
        from rotary.server.api.http import register_api

        register_api(external if config.http_api.external else internal_app, node, config, rules)
    if config.health.enabled:
        internal_app.router.add_route("*", config.health.handler_prefix, _health)
    return Server(config, node, verifier, external, internal, deadlines)


def _rate_limiter(limit: int, clock: Clock) -> ConnectionRateLimiter | None:
    return ConnectionRateLimiter(limit, clock) if limit > 0 else None


async def _listen(
    server: Server, runner: web.AppRunner, address: str, port: int, key: str, reuse_port: bool
) -> asyncio.AbstractServer:
    """aiohttp's TCPSite, with the header deadline started on each accepted connection."""
    assert runner.server is not None
    try:
        listener = await asyncio.get_running_loop().create_server(
            server.deadlines.protocol_factory(runner.server),
            address or None,
            port,
            reuse_address=True,
            reuse_port=reuse_port or None,
        )
    except OSError as exc:
        where = f"{address or '0.0.0.0'}:{port}"
        raise StartError(f"{key}: cannot listen on {where}: {exc.strerror or exc}") from None
    log.info("serving on %s:%d", address or "0.0.0.0", port)
    return listener


def _add_unidirectional(
    app: web.Application,
    node: Node,
    config: Config,
    check_origin: OriginCheck,
    gate: Gate,
) -> None:
    """Routes of the enabled unidirectional transports (https://centrifugal.dev/docs/transports/overview)."""
    if config.uni_websocket.enabled:
        uni_ws = config.uni_websocket
        options = UniWebSocketOptions(
            message_size_limit=uni_ws.message_size_limit or 65536,
            write_timeout=uni_ws.write_timeout or DEFAULT_WRITE_TIMEOUT,
            join_push_messages=uni_ws.join_push_messages,
            disable_closing_handshake=uni_ws.disable_closing_handshake,
            disable_disconnect_push=uni_ws.disable_disconnect_push,
            ping_interval=config.client.ping_interval or DEFAULT_FRAME_PING_INTERVAL,
            pong_timeout=config.client.pong_timeout or DEFAULT_FRAME_PONG_TIMEOUT,
        )
        handler = uni_websocket_handler(node, options, check_origin=check_origin)
        app.router.add_get(_route(uni_ws.handler_prefix), gate(handler))
    if config.uni_sse.enabled:
        sse = config.uni_sse
        handler = uni_sse_handler(
            node,
            max_request_body_size=sse.max_request_body_size,
            http_rules=_http_rules(sse.connect_code_to_http_response),
            check_origin=check_origin,
        )
        app.router.add_route("*", _route(sse.handler_prefix), gate(handler))
    if config.uni_http_stream.enabled:
        stream = config.uni_http_stream
        handler = uni_http_stream_handler(
            node,
            max_request_body_size=stream.max_request_body_size,
            http_rules=_http_rules(stream.connect_code_to_http_response),
            check_origin=check_origin,
        )
        app.router.add_route("*", _route(stream.handler_prefix), gate(handler))


def _http_rules(section: ConnectCodeToHTTPResponse) -> tuple[CodeToHTTPResponse, ...] | None:
    if not section.enabled:
        return None
    return tuple(CodeToHTTPResponse(t.code, t.to.status_code, t.to.body) for t in section.transforms)


async def serve(server: Server, stop: asyncio.Event, reuse_port: bool = False) -> None:
    """Runs until ``stop`` is set, then shuts down in order."""
    config = server.config
    try:
        await server.node.start()
    except EngineError as exc:
        await server.verifier.close()
        raise StartError(f"{', '.join(engine_keys(config))}: cannot start: {exc}") from None
    try:
        uni_grpc = await _start_uni_grpc(server.node, config)  # listening before "serving on" is logged
    except RuntimeError as exc:  # grpc's answer to a port it cannot bind
        await server.node.shutdown(config.shutdown.timeout)
        await server.verifier.close()
        raise StartError(f"uni_grpc.port: cannot listen on {config.uni_grpc.port}: {exc}") from None
    runners: list[web.AppRunner] = []
    sockets: list[asyncio.AbstractServer] = []
    http = config.http_server
    listeners = [(server.external, http.address, http.port, "http_server.port")]
    if server.internal is not None:
        listeners.append(
            (server.internal, http.internal_address, int(http.internal_port), "http_server.internal_port")
        )
    try:
        for app, address, port, key in listeners:
            idle = server.deadlines.timeouts.idle
            runner = web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=idle)
            await runner.setup()
            runners.append(runner)
            sockets.append(await _listen(server, runner, address, port, key, reuse_port))
        await stop.wait()
    finally:
        log.info("shutting down")
        for listener in sockets:
            listener.close()
        await server.node.shutdown(config.shutdown.timeout)
        if uni_grpc is not None:  # its streams ended with the node's 3001; let them flush
            await uni_grpc.stop(UNI_GRPC_GRACE)
        for runner in runners:
            await runner.cleanup()
        await server.verifier.close()


async def _start_uni_grpc(node: Node, config: Config) -> aio.Server | None:
    section = config.uni_grpc
    if not section.enabled:
        return None
    tls = None
    if section.tls.enabled:
        ca = section.tls.client_ca_pem
        tls = UniGrpcTLS(
            read_pem(section.tls.cert_pem), read_pem(section.tls.key_pem), read_pem(ca) if ca else b""
        )
    return await start_uni_grpc(node, section.address, section.port, section.max_receive_message_size, tls)


def run_server(config: Config, reuse_port: bool = False) -> int:
    """Serves until SIGINT or SIGTERM (SIGHUP is logged and ignored); returns the process exit code."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_not_supported, log)
        await serve(build_server(config), stop, reuse_port)

    try:
        asyncio.run(main())
    except StartError as exc:
        log.error("%s", exc)
        return 1
    return 0
