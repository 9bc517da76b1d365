"""The Centrifugo-compatible server: builds the Node, the engines and the HTTP endpoints from a
Config, and owns startup and shutdown order.

All endpoints share one port, as in Centrifugo; API, admin and health move to a second listener when
http_server.internal_port is set (https://centrifugal.dev/docs/server/configuration#http_server).
Shutdown: stop accepting, close clients with 3001 in batches, finish API calls, close the engines.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from rotary.engines.base import EngineError
from rotary.node.hooks import Hooks
from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes
from rotary.server.api.executor import ApiExecutor
from rotary.server.api.http import register_api
from rotary.server.channels import ChannelRules
from rotary.server.config.schema import Config
from rotary.server.connection_handler import connection_handlers
from rotary.server.connection_routes import connection_routes
from rotary.server.engines import build_engines, engine_keys
from rotary.server.front_door import WebSocketDoor, front_door_factory, serves_alone
from rotary.server.hooks import ServerHooks
from rotary.server.http_deadlines import CENTRIFUGO_HTTP_TIMEOUTS, HttpTimeouts, ReadDeadlines
from rotary.server.not_found import unrouted_paths
from rotary.server.pem import read_pem
from rotary.server.proxy.registry import Proxies
from rotary.server.reload import LoadConfig, reload_config
from rotary.server.server_header import send_no_server_header
from rotary.server.tls.listeners import TlsSetupError, listener_tls
from rotary.server.tokens import TokenVerifier
from rotary.server.tracing import Tracing
from rotary.server.workers import announce_serving
from rotary.transports.admission import Clock, ConnectionRateLimiter, Handler, admits, admitted
from rotary.transports.h3_requests import H3Requests
from rotary.transports.origins import for_requests, origin_value_checker, origin_value_matcher
from rotary.transports.routes import (
    add_connection_routes,
    route_path,
)

if TYPE_CHECKING:  # GRPC and HTTP/3 are the `grpc` and `http3` extras, imported where they are used
    from aioquic.asyncio.server import QuicServer
    from grpc import aio  # type: ignore[import-untyped]

    from rotary.server.tls.acme import Autocert
    from rotary.transports.webtransport import Endpoint

log = logging.getLogger("rotary.server")

UNI_GRPC_GRACE = 1.0
"""Seconds uni_grpc streams get at shutdown to send what the node's 3001 left them."""
WEBTRANSPORT_GRACE = 3.0
"""Seconds WebTransport sessions get at shutdown to end after the node's 3001 (a write timeout each)."""


def node_config(config: Config) -> NodeConfig:
    """The node's settings from the ``client`` section; a 0 takes centrifuge's own default, as
    ``centrifuge.New`` gives it (a channel limit of 0 is 128 channels, not none)."""
    c = config.client
    name = config.node.name or f"{socket.gethostname()}_{config.http_server.port}"
    return NodeConfig(
        name=name,
        channel_limit=c.channel_limit or 128,
        user_connection_limit=c.user_connection_limit,
        queue_max_size=c.queue_max_size or 1048576,
        history_max_publication_limit=c.history_max_publication_limit,
        recovery_max_publication_limit=c.recovery_max_publication_limit,
        stale_close_delay=c.stale_close_delay or 15.0,
        ping_interval=c.ping_interval,
        pong_timeout=c.pong_timeout,
        expired_close_delay=c.expired_close_delay or 25.0,
        expired_sub_close_delay=c.expired_sub_close_delay or 25.0,
        connect_include_server_time=c.connect_include_server_time,
        presence_update_interval=c.presence_update_interval or 25.0,
        position_check_interval=c.channel_position_check_delay or 40.0,
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
    rules: ChannelRules
    """The channel rules the server API resolves channels with; a reload makes it adopt new ones."""
    executor: ApiExecutor
    """The one executor of the HTTP, GRPC and admin APIs."""
    applied: Config
    """The config last applied: ``config`` until a reload. Keys Centrifugo reads per request
    (``client.connection_limit``) come from here; the rest of the server keeps ``config``."""
    autocert: Autocert | None = None
    """Certificates from ACME when ``http_server.tls_autocert`` is on."""
    http3: Endpoint | None = None
    """The HTTP/3 endpoint (http3.py) when ``http_server.http3.enabled``: WebTransport when
    ``webtransport.enabled``, and the external listener's routes once ``serve`` runs them."""
    tracing: Tracing | None = None
    """OpenTelemetry's provider when ``opentelemetry.enabled``; flushed at shutdown."""
    proxies: Proxies | None = None
    """The proxy backends, built once at start; hooks rebuilt by a reload ask the same ones."""
    websocket_door: WebSocketDoor | None = None
    """What the external listener's front door needs to take WebSocket upgrades (server/front_door.py)."""


async def _health(request: web.Request) -> web.Response:
    return web.json_response({})


def build_server(
    config: Config,
    *,
    clock: Clock = time.monotonic,
    http_timeouts: HttpTimeouts = CENTRIFUGO_HTTP_TIMEOUTS,
    wall_clock: Clock = time.time,
) -> Server:
    """Everything ``serve`` runs. Tests pass their own ``clock`` (it drives the connection rate
    limit), ``wall_clock`` (it decides certificate renewals) and shorter ``http_timeouts``."""
    autocert = None
    if config.http_server.tls_autocert.enabled:
        from rotary.server.tls.acme import Autocert

        try:
            autocert = Autocert(config.http_server.tls_autocert, clock=wall_clock)
        except (OSError, ValueError) as exc:  # an unwritable cache_dir, an unreadable cached key
            key = "http_server.tls_autocert.cache_dir"
            raise StartError(f"{key}: cannot use the certificate cache: {exc}") from None
    deadlines = ReadDeadlines(http_timeouts)
    verifier = token_verifier(config)
    rules = ChannelRules(config.channel)
    engines = build_engines(config)
    prometheus = config.prometheus
    metrics = (
        Metrics(recovered_publications=prometheus.recovered_publications_histogram)
        if prometheus.enabled
        else None
    )
    proxies = Proxies(config, metrics)  # built once: a reload rebuilds the hooks around them
    node = Node(
        node_config(config),
        hooks=build_hooks(config, verifier, proxies),
        broker=engines.broker,
        presence_manager=engines.presence_manager,
        controller=engines.controller,
        metrics=metrics,
    )
    middlewares = [deadlines.middleware, unrouted_paths]
    external = web.Application(
        client_max_size=max(config.websocket.message_size_limit, 1 << 20), middlewares=middlewares
    )
    internal = web.Application(middlewares=middlewares) if config.http_server.internal_port else None
    send_no_server_header(external, internal)
    external.on_cleanup.append(lambda _: proxies.close())  # backends open lazily, close with the app
    origin_allowed = origin_value_checker(config.client.allowed_origins)
    check_origin = for_requests(origin_allowed)
    limiter = _rate_limiter(config.client.connection_rate_limit, clock)

    def connection_limit() -> int:
        return server.applied.client.connection_limit  # ``server`` is bound below, before any request

    def gate(handler: Handler) -> Handler:
        return admitted(handler, node, limiter, connection_limit)

    routes = connection_routes(config)
    ws_endpoint = add_connection_routes(external, node, routes, check_origin, gate)
    door = None
    if ws_endpoint is not None and routes.websocket is not None:
        door = WebSocketDoor(
            node,
            ws_endpoint,
            routes.websocket.path.encode(),
            routes.websocket.compression,
            origin_value_matcher(config.client.allowed_origins),
            limiter,
            connection_limit,
        )
    internal_app = internal or external
    executor = ApiExecutor(node, config, rules)
    if not config.http_api.disabled:
        register_api(external if config.http_api.external else internal_app, executor, node, config)
    if config.health.enabled:
        internal_app.router.add_route("*", config.health.handler_prefix, _health)
    http3 = None
    if config.http_server.http3.enabled:
        from rotary.server.alt_svc import advertise_http3
        from rotary.transports.webtransport import Endpoint, WebTransportOptions

        options = None
        if config.webtransport.enabled:
            options = WebTransportOptions(
                path=route_path(config.webtransport.handler_prefix),
                message_size_limit=config.webtransport.message_size_limit or 65536,
                admit=lambda: admits(node, limiter, connection_limit),
                check_origin=origin_allowed,
            )
        else:  # as Centrifugo, whose WebTransport server leaves its HTTP/3 server without Alt-Svc
            advertise_http3(external, config.http_server.port)
        http3 = Endpoint(node, options)
    if metrics is not None:
        from rotary.server.metrics.endpoint import add_metrics

        apps = [external] if internal is None else [external, internal]
        add_metrics(internal_app, apps, node, metrics, config.prometheus)
    tracing = _tracing(config, node, external if config.http_api.external else internal_app)
    if config.admin.enabled:  # last: its file route takes every path under its prefix
        from rotary.server.admin import register_admin  # imported only by servers that serve it

        register_admin(external if config.admin.external else internal_app, executor, node, config.admin)
    server = Server(
        config,
        node,
        verifier,
        external,
        internal,
        deadlines,
        rules,
        executor,
        config,
        autocert,
        http3,
        tracing,
        proxies,
        door,
    )
    return server


def token_verifier(config: Config) -> TokenVerifier:
    return TokenVerifier(
        config.client.token,
        config.client.subscription_token,
        skip_signature=config.client.insecure_skip_token_signature_verify,
    )


def build_hooks(config: Config, verifier: TokenVerifier, proxies: Proxies) -> Hooks:
    """The node's hooks for ``config``: at start, and again on each config reload, around the
    proxy backends built at start (as in Centrifugo, a reload does not rebuild the proxies)."""
    return ServerHooks(config, verifier, proxies)


async def reconfigure(server: Server, config: Config) -> None:
    """Applies what Centrifugo reloads on SIGHUP (token verifiers, client, channel and RPC options,
    the connection limit) by building fresh objects from ``config`` and swapping them in without an
    await in between, so no command sees half of each. Everything else (``server.config`` included)
    stays as started. Commands already past their hook finish under the old config; the old verifier
    is closed after."""
    verifier = token_verifier(config)
    assert server.proxies is not None
    hooks = build_hooks(config, verifier, server.proxies)
    rules = ChannelRules(config.channel)
    old_verifier = server.verifier
    server.node.hooks = hooks
    server.rules.adopt(rules)
    server.verifier = verifier
    server.applied = config
    await old_verifier.close()


def _tracing(config: Config, node: Node, api_app: web.Application) -> Tracing | None:
    """Starts OpenTelemetry when enabled, with API spans on the app that serves the API."""
    otel = config.opentelemetry
    if not otel.enabled:
        return None
    from rotary.server.api.schema import METHODS
    from rotary.server.tracing import api_middleware, start_tracing

    tracing = start_tracing(node.id, node.config.version)
    if otel.api and not config.http_api.disabled:
        prefix = config.http_api.handler_prefix.rstrip("/")
        routes = frozenset({prefix or "/", *(f"{prefix}/{name}" for name in METHODS)})
        api_app.middlewares.append(api_middleware(tracing, routes))
    return tracing


def _rate_limiter(limit: int, clock: Clock) -> ConnectionRateLimiter | None:
    return ConnectionRateLimiter(limit, clock) if limit > 0 else None


SOMAXCONN_PATH = "/proc/sys/net/core/somaxconn"


def listen_backlog() -> int:
    """The accept queue to ask the kernel for: its own limit, ``net.core.somaxconn``, as Go's net
    package asks for Centrifugo (``maxListenerBacklog``; 65,535 on this kind of host, against
    asyncio's default of 100). A reconnect storm of thousands arrives faster than one event loop
    accepts; with a queue of 100 the kernel drops the rest of the SYNs, and each client sends its
    SYN again 1 s, 3 s, 7 s later, outliving the SDK's 5 s timeout before the node has seen it
    (315 dropped of 5,000 clients reconnecting at once, tests/compat/test_reconnect_storm.py)."""
    try:
        with open(SOMAXCONN_PATH) as limit:
            return int(limit.read().split()[0]) or socket.SOMAXCONN
    except (OSError, ValueError, IndexError):
        return socket.SOMAXCONN


async def _listen(
    server: Server,
    app: web.Application,
    handlers: Callable[[], RequestHandler],
    address: str,
    port: int,
    key: str,
    reuse_port: bool,
    tls: ssl.SSLContext | None,
) -> asyncio.AbstractServer:
    """aiohttp's TCPSite, with the header deadline started on each accepted connection; with
    ``tls`` the port speaks TLS only, its handshake bounded by the header deadline."""
    try:
        door = server.websocket_door if app is server.external else None
        factory: Callable[[], asyncio.Protocol]
        if door is not None and serves_alone(server.external, server.deadlines):
            factory = front_door_factory(handlers, server.deadlines, door)
        else:
            factory = server.deadlines.protocol_factory(handlers)
        listener = await asyncio.get_running_loop().create_server(
            factory,
            address or None,
            port,
            backlog=listen_backlog(),
            reuse_address=True,
            reuse_port=reuse_port or None,
            ssl=tls,
            ssl_handshake_timeout=server.deadlines.timeouts.read_header if tls else None,
        )
    except OSError as exc:
        where = f"{address or '0.0.0.0'}:{port}"
        raise StartError(f"{key}: cannot listen on {where}: {exc.strerror or exc}") from None
    log.info("serving on %s:%d%s", address or "0.0.0.0", port, " with TLS" if tls else "")
    return listener


async def serve(server: Server, stop: asyncio.Event, reuse_port: bool = False) -> None:
    """Runs until ``stop`` is set, then shuts down in order."""
    config = server.config
    try:
        tls = listener_tls(config.http_server, server.autocert.context if server.autocert else None)
    except TlsSetupError as exc:
        await server.verifier.close()
        raise StartError(str(exc)) from None
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
    try:
        grpc_api = await _start_grpc_api(server)
    except RuntimeError as exc:
        if uni_grpc is not None:
            await uni_grpc.stop(None)
        await server.node.shutdown(config.shutdown.timeout)
        await server.verifier.close()
        raise StartError(f"grpc_api.port: cannot listen on {config.grpc_api.port}: {exc}") from None
    runners: list[web.AppRunner] = []
    sockets: list[asyncio.AbstractServer] = []
    http3: QuicServer | None = None
    http = config.http_server
    listeners = [(server.external, http.address, http.port, "http_server.port", tls.external)]
    if server.internal is not None:
        internal_port = int(http.internal_port)
        listeners.append(
            (server.internal, http.internal_address, internal_port, "http_server.internal_port", tls.internal)
        )
    try:
        if server.autocert is not None:
            await _start_autocert(server.autocert)
        listener_handlers: list[Callable[[], RequestHandler]] = []
        for app, address, port, key, context in listeners:
            idle = server.deadlines.timeouts.idle
            options: dict[str, Any] = {"access_log": None, "keepalive_timeout": idle}
            runner = web.AppRunner(app, handle_signals=False, **options)
            await runner.setup()
            runners.append(runner)
            assert runner.server is not None
            handlers = connection_handlers(runner.server, **options)
            listener_handlers.append(handlers)
            sockets.append(await _listen(server, app, handlers, address, port, key, reuse_port, context))
        if server.http3 is not None:
            # HTTP/3 serves the external listener's routes, as Centrifugo does
            server.http3.requests = H3Requests(server.deadlines.protocol_factory(listener_handlers[0]))
            http3 = await _listen_http3(server.http3, config, reuse_port)
        announce_serving()
        await stop.wait()
    finally:
        log.info("shutting down")
        for listener in sockets:
            listener.close()
        if grpc_api is not None:  # new calls are refused; those in flight finish, as with GracefulStop
            await grpc_api.stop(config.shutdown.timeout)
        await server.node.shutdown(config.shutdown.timeout)
        if server.autocert is not None:
            await server.autocert.close()
        if http3 is not None and server.http3 is not None:
            await server.http3.drain(WEBTRANSPORT_GRACE)  # each session's 3001 takes a write timeout
            http3.close()
        if uni_grpc is not None:  # its streams ended with the node's 3001; let them flush
            await uni_grpc.stop(UNI_GRPC_GRACE)
        for runner in runners:
            await runner.cleanup()
        await server.verifier.close()
        if server.tracing is not None:
            from rotary.server.tracing import stop_tracing

            await asyncio.to_thread(stop_tracing, server.tracing)


async def _start_autocert(autocert: Autocert) -> None:
    try:
        await autocert.start()
    except OSError as exc:
        key = "http_server.tls_autocert.http_addr"
        raise StartError(f"{key}: cannot listen: {exc.strerror or exc}") from None


async def _listen_http3(endpoint: Endpoint, config: Config, reuse_port: bool) -> QuicServer:
    from rotary.server.http3 import start_http3

    try:
        return await start_http3(endpoint, config, reuse_port)
    except OSError as exc:
        where = f"udp {config.http_server.address or '[::]'}:{config.http_server.port}"
        problem = exc.strerror or exc
        raise StartError(f"http_server.http3.enabled: cannot listen on {where}: {problem}") from None


async def _start_uni_grpc(node: Node, config: Config) -> aio.Server | None:
    section = config.uni_grpc
    if not section.enabled:
        return None
    from rotary.transports.uni_grpc import UniGrpcTLS, start_uni_grpc

    tls = None
    if section.tls.enabled:
        ca = section.tls.client_ca_pem
        tls = UniGrpcTLS(
            read_pem(section.tls.cert_pem), read_pem(section.tls.key_pem), read_pem(ca) if ca else b""
        )
    return await start_uni_grpc(node, section.address, section.port, section.max_receive_message_size, tls)


async def _start_grpc_api(server: Server) -> aio.Server | None:
    if not server.config.grpc_api.enabled:
        return None
    from rotary.server.api.grpc_api import start_grpc_api

    return await start_grpc_api(server.executor, server.config)


def run_server(config: Config, reload: LoadConfig, reuse_port: bool = False) -> int:
    """Serves until SIGINT or SIGTERM, applying on SIGHUP the config that ``reload`` reads; returns the
    process exit code."""
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
        server = build_server(config)
        reloads: set[asyncio.Task[bool]] = set()

        def on_sighup() -> None:
            task = loop.create_task(reload_config(reload, partial(reconfigure, server), log))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        await serve(server, stop, reuse_port)

    try:
        asyncio.run(main())
    except StartError as exc:
        log.error("%s", exc)
        return 1
    return 0
