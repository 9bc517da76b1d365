"""The Centrifugo v6 configuration tree as frozen dataclasses.

Attribute names are Centrifugo's keys, so a Centrifugo config file, its ``CENTRIFUGO_*`` environment
and its flags load unchanged. Durations are float seconds here and Go duration strings outside.
See https://centrifugal.dev/docs/server/configuration
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rotary.server.config.fields import dur, opt, section
from rotary.server.config.schema_channels import (
    ChannelConfig,
    ChannelOptions,
    NamedProxyConfig,
    NamespaceConfig,
    ProxyConfig,
    RpcConfig,
    RpcNamespaceConfig,
    RpcOptions,
    ToggledProxyConfig,
    TransformDisconnect,
)
from rotary.server.config.schema_engines import (
    BrokerConfig,
    ConsumerConfig,
    ControllerConfig,
    EngineConfig,
    MapBrokerConfig,
    PresenceManagerConfig,
)
from rotary.server.config.schema_transports import (
    ConnInitConfig,
    EmulationConfig,
    GrpcAPIConfig,
    HttpAPIConfig,
    HTTPServerConfig,
    HTTPStreamConfig,
    SockJSConfig,
    SSEConfig,
    TLSConfig,
    UniGRPCConfig,
    UniHTTPStreamConfig,
    UniSSEConfig,
    UniWebSocketConfig,
    WebSocketConfig,
    WebTransportConfig,
)

__all__ = [
    "ChannelConfig",
    "ChannelOptions",
    "ClientConfig",
    "Config",
    "NamedProxyConfig",
    "NamespaceConfig",
    "ProxyConfig",
    "RpcConfig",
    "RpcNamespaceConfig",
    "RpcOptions",
    "SubscriptionTokenConfig",
    "TLSConfig",
    "TokenConfig",
]

LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal", "none")


def user_id_claim(value: Any) -> str | None:
    if value and not re.fullmatch(r"[a-zA-Z_]+", value):
        return "must match ^[a-zA-Z_]+$"
    return None


def log_level(value: Any) -> str | None:
    return None if value in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be positive"


@dataclass(frozen=True)
class LogConfig:
    level: str = opt("info", "trace, debug, info, warn, error, fatal or none.", check=log_level)
    file: str = opt("", "Write logs to this file instead of stdout.")


@dataclass(frozen=True)
class TokenConfig:
    """How connection JWTs are verified; any one key source enables verification."""

    hmac_secret_key: str = opt("", "Secret of HS256/HS384/HS512 tokens.")
    hmac_previous_secret_key: str = opt("", "Former HMAC secret still accepted during rotation.")
    hmac_previous_secret_key_valid_until: int = opt(0, "Unix seconds until which the former secret works.")
    rsa_public_key: str = opt("", "Public key of RS256/RS384/RS512 tokens (PEM).")
    ecdsa_public_key: str = opt("", "Public key of ES256/ES384/ES512 tokens (PEM).")
    jwks_public_endpoint: str = opt("", "JWKS URL to fetch verification keys from.")
    audience: str = opt("", "Expected `aud` claim.")
    audience_regex: str = opt("", "Regular expression the `aud` claim must match.")
    issuer: str = opt("", "Expected `iss` claim.")
    issuer_regex: str = opt("", "Regular expression the `iss` claim must match.")
    user_id_claim: str = opt("", "Claim holding the user ID instead of `sub`.", check=user_id_claim)
    insecure_skip_jwks_endpoint_safety_check: bool = opt(False, "Allow JWKS URLs with template variables.")


@dataclass(frozen=True)
class SubscriptionTokenConfig(TokenConfig):
    enabled: bool = opt(False, "Verify subscription tokens with these settings instead of client.token.")


@dataclass(frozen=True)
class ClientProxiesConfig:
    connect: ToggledProxyConfig = section(ToggledProxyConfig, "Authenticate connections through a proxy.")
    refresh: ToggledProxyConfig = section(ToggledProxyConfig, "Extend expiring connections through a proxy.")


@dataclass(frozen=True)
class PersonalChannelConfig:
    enabled: bool = opt(False, "Subscribe every user to its personal channel on connect.")
    personal_channel_namespace: str = opt("", "Namespace of personal channels.")
    single_connection: bool = opt(False, "Keep one connection per user (needs presence in the namespace).")


@dataclass(frozen=True)
class UniConnectCodeToDisconnectTransform:
    code: int = opt(0, "Connect error code to transform.")
    to: TransformDisconnect = section(TransformDisconnect, "Disconnect to send instead.")


@dataclass(frozen=True)
class ConnectCodeToUnidirectionalDisconnect:
    enabled: bool = opt(False, "Turn connect errors into disconnects on unidirectional transports.")
    transforms: tuple[UniConnectCodeToDisconnectTransform, ...] = opt((), "Code to disconnect rules.")


@dataclass(frozen=True)
class ClientConfig:
    ping_interval: float = dur("25s", "How often the server pings a client.")
    pong_timeout: float = dur("8s", "How long the server waits for a pong; below ping_interval.")
    proxy: ClientProxiesConfig = section(ClientProxiesConfig)
    allowed_origins: tuple[str, ...] = opt((), "Origins allowed to connect; `*` allows every origin.")
    token: TokenConfig = section(TokenConfig, "Connection token verification.")
    subscription_token: SubscriptionTokenConfig = section(SubscriptionTokenConfig)
    allow_anonymous_connect_without_token: bool = opt(False, "Connect clients without a token as anonymous.")
    disallow_anonymous_connection_tokens: bool = opt(False, "Reject tokens with an empty user.")
    expired_close_delay: float = dur("25s", "Grace time before closing an expired connection.")
    expired_sub_close_delay: float = dur("25s", "Grace time before closing an expired subscription.")
    stale_close_delay: float = dur("10s", "Close connections that send no connect command in time.")
    channel_limit: int = opt(128, "Channels one connection may subscribe to.")
    queue_max_size: int = opt(1048576, "Bytes queued for one slow client before disconnecting it.")
    presence_update_interval: float = dur("27s", "How often presence of a connection is refreshed.")
    concurrency: int = opt(0, "Commands of one connection handled at once; 0 handles them in turn.")
    channel_position_check_delay: float = dur("40s", "How often positioned subscriptions are checked.")
    channel_position_max_time_lag: float = dur("0s", "Tolerated lag of a position check.")
    connection_limit: int = opt(0, "Connections per node; 0 means no limit.")
    user_connection_limit: int = opt(0, "Connections per user per node; 0 means no limit.")
    connection_rate_limit: int = opt(0, "New connections per second per node; 0 means no limit.")
    connect_include_server_time: bool = opt(False, "Put server time into the connect reply.")
    history_max_publication_limit: int = opt(300, "Most publications one history call returns.")
    recovery_max_publication_limit: int = opt(300, "Most publications one recovery returns.")
    insecure_skip_token_signature_verify: bool = opt(False, "Trust tokens without checking signatures.")
    user_id_http_header: str = opt("", "Take the user ID from this request header (set by a proxy).")
    insecure: bool = opt(False, "Accept every connection and command without authorization.")
    subscribe_to_user_personal_channel: PersonalChannelConfig = section(PersonalChannelConfig)
    connect_code_to_unidirectional_disconnect: ConnectCodeToUnidirectionalDisconnect = section(
        ConnectCodeToUnidirectionalDisconnect
    )


@dataclass(frozen=True)
class SharedPollConfig:
    hmac_secret_key: str = opt("", "Secret of shared poll tokens.")
    hmac_previous_secret_key: str = opt("", "Former secret still accepted during rotation.")
    hmac_previous_secret_key_valid_until: int = opt(0, "Unix seconds until which the former secret works.")
    concurrency_limit: int = opt(0, "Refresh requests run at once; 0 means a default.")


@dataclass(frozen=True)
class AdminConfig:
    enabled: bool = opt(False, "Serve the admin web UI and its API.")
    handler_prefix: str = opt("", "Path prefix of the admin UI.")
    password: str = opt("", "Admin login password.")
    secret: str = opt("", "Secret signing admin session tokens.")
    insecure: bool = opt(False, "Open the admin UI without a login.")
    web_path: str = opt("", "Serve the admin UI from this directory instead of the built-in one.")
    web_proxy_address: str = opt("", "Proxy the admin UI to this address (UI development).")
    external: bool = opt(False, "Serve the admin UI on the external port.")


@dataclass(frozen=True)
class PrometheusConfig:
    enabled: bool = opt(False, "Serve Prometheus metrics.")
    handler_prefix: str = opt("/metrics", "Path of the metrics endpoint.")
    instrument_http_handlers: bool = opt(False, "Measure HTTP handlers too.")
    recovered_publications_histogram: bool = opt(False, "Record how many publications recoveries return.")
    native_histograms: bool = opt(False, "Expose native histograms.")


@dataclass(frozen=True)
class HealthConfig:
    enabled: bool = opt(False, "Serve the health check endpoint.")
    handler_prefix: str = opt("/health", "Path of the health endpoint.")


@dataclass(frozen=True)
class SwaggerConfig:
    enabled: bool = opt(False, "Serve a Swagger UI of the HTTP API.")
    handler_prefix: str = opt("/swagger", "Path of the Swagger UI.")


@dataclass(frozen=True)
class DebugConfig:
    enabled: bool = opt(False, "Serve profiling endpoints (never expose them publicly).")
    handler_prefix: str = opt("/debug/pprof", "Path of the profiling endpoints.")


@dataclass(frozen=True)
class OpenTelemetryConfig:
    enabled: bool = opt(False, "Export traces with OpenTelemetry.")
    api: bool = opt(False, "Trace server API calls.")
    consuming: bool = opt(False, "Trace consumed queue messages.")
    google_cloud_adc_auth: bool = opt(False, "Authenticate the exporter with Google Cloud ADC.")


@dataclass(frozen=True)
class GraphiteConfig:
    enabled: bool = opt(False, "Push metrics to Graphite.")
    host: str = opt("localhost", "Graphite host.")
    port: int = opt(2003, "Graphite port.")
    prefix: str = opt("centrifugo", "Prefix of metric names.")
    interval: float = dur("10s", "How often metrics are pushed.")
    tags: bool = opt(False, "Send tags in Graphite's tagged format.")


@dataclass(frozen=True)
class UsageStatsConfig:
    disabled: bool = opt(False, "Do not report anonymous usage statistics.")


@dataclass(frozen=True)
class NodeConfig:
    name: str = opt("", "Node name shown in stats; empty picks hostname and port.")
    info_metrics_aggregate_interval: float = dur("60s", "How often node metrics are aggregated.")


@dataclass(frozen=True)
class ShutdownConfig:
    timeout: float = dur("30s", "Longest graceful shutdown.", check=positive)


@dataclass(frozen=True)
class Config:
    http_server: HTTPServerConfig = section(HTTPServerConfig, "Main HTTP server.")
    log: LogConfig = section(LogConfig, "Logging.")
    engine: EngineConfig = section(EngineConfig, "Broker and presence manager in one.")
    broker: BrokerConfig = section(BrokerConfig, "A broker set apart from the engine.")
    presence_manager: PresenceManagerConfig = section(PresenceManagerConfig, "A presence manager set apart.")
    map_broker: MapBrokerConfig = section(MapBrokerConfig, "Broker of map subscriptions.")
    controller: ControllerConfig = section(ControllerConfig, "Inter-node messages.")
    shared_poll: SharedPollConfig = section(SharedPollConfig, "Shared poll subscriptions.")
    client: ClientConfig = section(ClientConfig, "Client connections.")
    channel: ChannelConfig = section(ChannelConfig, "Channels and namespaces.")
    rpc: RpcConfig = section(RpcConfig, "Client RPC calls.")
    proxies: tuple[NamedProxyConfig, ...] = opt((), "Named proxies that namespaces refer to.")
    http_api: HttpAPIConfig = section(HttpAPIConfig, "HTTP server API.")
    grpc_api: GrpcAPIConfig = section(GrpcAPIConfig, "GRPC server API.")
    consumers: tuple[ConsumerConfig, ...] = opt((), "Async consumers of queues.")
    websocket: WebSocketConfig = section(WebSocketConfig, "Bidirectional WebSocket.")
    sse: SSEConfig = section(SSEConfig, "Bidirectional SSE (emulation).")
    http_stream: HTTPStreamConfig = section(HTTPStreamConfig, "Bidirectional HTTP streaming (emulation).")
    sockjs: SockJSConfig = section(
        SockJSConfig, "SockJS, opt-in (rotary's own section; not in Centrifugo v6)."
    )
    webtransport: WebTransportConfig = section(WebTransportConfig, "WebTransport (experimental).")
    uni_sse: UniSSEConfig = section(UniSSEConfig, "Unidirectional SSE.")
    uni_http_stream: UniHTTPStreamConfig = section(UniHTTPStreamConfig, "Unidirectional HTTP streaming.")
    uni_websocket: UniWebSocketConfig = section(UniWebSocketConfig, "Unidirectional WebSocket.")
    uni_grpc: UniGRPCConfig = section(UniGRPCConfig, "Unidirectional GRPC.")
    emulation: EmulationConfig = section(EmulationConfig, "Endpoint of emulated bidirectional transports.")
    admin: AdminConfig = section(AdminConfig, "Admin web UI.")
    prometheus: PrometheusConfig = section(PrometheusConfig, "Prometheus metrics.")
    health: HealthConfig = section(HealthConfig, "Health check.")
    swagger: SwaggerConfig = section(SwaggerConfig, "Swagger UI.")
    debug: DebugConfig = section(DebugConfig, "Profiling endpoints.")
    init: ConnInitConfig = section(ConnInitConfig, "Connection init endpoint.")
    opentelemetry: OpenTelemetryConfig = section(OpenTelemetryConfig, "Tracing.")
    graphite: GraphiteConfig = section(GraphiteConfig, "Graphite metrics export.")
    usage_stats: UsageStatsConfig = section(UsageStatsConfig, "Anonymous usage statistics.")
    node: NodeConfig = section(NodeConfig, "This node in a cluster.")
    shutdown: ShutdownConfig = section(ShutdownConfig, "Graceful shutdown.")
    pid_file: str = opt("", "Write the process ID to this file.")
    enable_unreleased_features: bool = opt(False, "Turn on features that may still change.")
