"""Schema of channel and RPC namespaces and of proxies.

See https://centrifugal.dev/docs/server/channels and https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

from dataclasses import dataclass

from rotary.server.config.fields import dur, opt, section
from rotary.server.config.schema_transports import TLSConfig


@dataclass(frozen=True)
class TransformError:
    code: int = opt(0, "Client error code to answer with.")
    message: str = opt("", "Error message.")
    temporary: bool = opt(False, "Mark the error temporary so the client retries.")


@dataclass(frozen=True)
class TransformDisconnect:
    code: int = opt(0, "Disconnect code to close with.")
    reason: str = opt("", "Disconnect reason.")


@dataclass(frozen=True)
class HttpStatusToCodeTransform:
    status_code: int = opt(0, "HTTP status returned by the proxy backend.")
    to_error: TransformError = section(TransformError, "Answer the client with this error.")
    to_disconnect: TransformDisconnect = section(TransformDisconnect, "Or disconnect the client.")


@dataclass(frozen=True)
class ProxyHTTPConfig:
    tls: TLSConfig = section(TLSConfig, "TLS towards the backend.")
    static_headers: dict[str, str] = section(dict, "Headers added to every proxy request.")
    status_to_code_transforms: tuple[HttpStatusToCodeTransform, ...] = opt((), "HTTP status rules.")


@dataclass(frozen=True)
class ProxyGRPCConfig:
    tls: TLSConfig = section(TLSConfig, "TLS towards the backend.")
    credentials_key: str = opt("", "Metadata key of per-call credentials.")
    credentials_value: str = opt("", "Metadata value of per-call credentials.")
    compression: bool = opt(False, "Compress GRPC requests with gzip.")
    static_metadata: dict[str, str] = section(dict, "Metadata added to every proxy request.")


@dataclass(frozen=True)
class ProxyConfig:
    """Where and how an event is forwarded to the application backend."""

    endpoint: str = opt("", "http(s):// URL or grpc://host:port of the backend.")
    timeout: float = dur("1s", "Timeout of one proxy request.")
    http_headers: tuple[str, ...] = opt((), "Client request headers to forward.")
    grpc_metadata: tuple[str, ...] = opt((), "Client GRPC metadata keys to forward.")
    emulated_headers: tuple[str, ...] = opt((), "Headers the client SDK sent inside the connect command.")
    binary_encoding: bool = opt(False, "Send payloads base64-encoded instead of as JSON.")
    include_connection_meta: bool = opt(False, "Attach the connection meta to channel proxy requests.")
    http: ProxyHTTPConfig = section(ProxyHTTPConfig)
    grpc: ProxyGRPCConfig = section(ProxyGRPCConfig)


@dataclass(frozen=True)
class ToggledProxyConfig(ProxyConfig):
    enabled: bool = opt(False, "Forward this event to the backend.")


@dataclass(frozen=True)
class NamedProxyConfig(ProxyConfig):
    name: str = opt("", "Name namespaces use to refer to this proxy.")


@dataclass(frozen=True)
class ChannelProxiesConfig:
    subscribe: ProxyConfig = section(ProxyConfig, "The `default` subscribe proxy.")
    publish: ProxyConfig = section(ProxyConfig, "The `default` publish proxy.")
    sub_refresh: ProxyConfig = section(ProxyConfig, "The `default` subscription refresh proxy.")
    subscribe_stream: ProxyConfig = section(ProxyConfig, "The `default` subscribe stream proxy.")
    map_publish: ProxyConfig = section(ProxyConfig, "The `default` map publish proxy.")
    map_remove: ProxyConfig = section(ProxyConfig, "The `default` map remove proxy.")
    shared_poll_refresh: ProxyConfig = section(ProxyConfig, "The `default` shared poll refresh proxy.")


@dataclass(frozen=True)
class MapOptions:
    mode: str = opt("", "Map channel mode.")
    key_ttl: float = dur("0s", "Lifetime of a key without updates; 0 keeps keys.")
    stream_size: int = opt(0, "Length of the change stream.")
    stream_ttl: float = dur("0s", "Lifetime of the change stream.")
    meta_ttl: float = dur("0s", "Lifetime of the map's meta information.")
    remove_client_on_unsubscribe: bool = opt(False, "Remove the client's key when it unsubscribes.")
    client_key: str = opt("", "Which client attribute forms its key.")
    allow_publish_for_client: bool = opt(False, "Any connected client may publish.")
    allow_publish_for_subscriber: bool = opt(False, "Subscribers may publish.")
    allow_publish_for_anonymous: bool = opt(False, "Anonymous clients may publish.")
    allow_remove_for_client: bool = opt(False, "Any connected client may remove keys.")
    allow_remove_for_subscriber: bool = opt(False, "Subscribers may remove keys.")
    allow_remove_for_anonymous: bool = opt(False, "Anonymous clients may remove keys.")
    publish_proxy_enabled: bool = opt(False, "Forward map publishes to a proxy.")
    publish_proxy_name: str = opt("default", "Proxy for map publishes.")
    remove_proxy_enabled: bool = opt(False, "Forward map removals to a proxy.")
    remove_proxy_name: str = opt("default", "Proxy for map removals.")
    default_page_size: int = opt(0, "State page size when the client asks for none.")
    min_page_size: int = opt(0, "Smallest state page size.")
    max_page_size: int = opt(0, "Largest state page size.")
    live_transition_max_publication_limit: int = opt(0, "Publications replayed when going live.")
    subscribe_catch_up_timeout: float = dur("0s", "Longest catch-up phase of a subscription.")


@dataclass(frozen=True)
class SharedPollOptions:
    proxy_name: str = opt("", "Proxy answering shared poll refreshes.")
    refresh_interval: float = dur("0s", "How often tracked keys are refreshed.")
    refresh_batch_size: int = opt(0, "Keys per refresh request.")
    max_keys_per_connection: int = opt(0, "Keys one connection may track.")
    mode: str = opt("", "Shared poll mode.")
    channel_shutdown_delay: float = dur("0s", "Delay before an idle channel stops polling.")
    track_expired_extra_delay: float = dur("0s", "Grace time for expired tracking.")
    publish_enabled: bool = opt(False, "Allow publications into shared poll channels.")


@dataclass(frozen=True)
class ChannelOptions:
    """Behaviour of the channels of one namespace (or of channels without a namespace)."""

    presence: bool = opt(False, "Keep presence information of subscribers.")
    join_leave: bool = opt(False, "Send join and leave messages.")
    force_push_join_leave: bool = opt(False, "Push join/leave to every subscriber without asking.")
    map_clients_presence_channel_prefix: str = opt("", "Prefix of the clients presence map channel.")
    map_users_presence_channel_prefix: str = opt("", "Prefix of the users presence map channel.")
    history_size: int = opt(0, "Publications kept in history; needs history_ttl.")
    history_ttl: float = dur("0s", "How long history is kept; needs history_size.")
    history_meta_ttl: float = dur("0s", "History meta lifetime; 0 uses channel.history_meta_ttl.")
    force_positioning: bool = opt(False, "Turn positioning on for every subscriber.")
    allow_positioning: bool = opt(False, "Let subscribers ask for positioning.")
    force_recovery: bool = opt(False, "Turn recovery on for every subscriber.")
    allow_recovery: bool = opt(False, "Let subscribers ask for recovery.")
    force_recovery_mode: str = opt("", "`stream` or `cache` recovery for every subscriber.")
    auto_cache_recover: bool = opt(False, "Recover the latest publication in cache mode automatically.")
    allowed_delta_types: tuple[str, ...] = opt((), "Delta compressions clients may ask for (`fossil`).")
    allow_tags_filter: bool = opt(False, "Let subscribers filter publications by tags.")
    delta_publish: bool = opt(False, "Publish as delta by default.")
    allow_subscribe_for_anonymous: bool = opt(False, "Anonymous clients may subscribe without a token.")
    allow_subscribe_for_client: bool = opt(False, "Authenticated clients may subscribe without a token.")
    allow_publish_for_anonymous: bool = opt(False, "Anonymous clients may publish.")
    allow_publish_for_subscriber: bool = opt(False, "Subscribers may publish.")
    allow_publish_for_client: bool = opt(False, "Any authenticated client may publish.")
    allow_presence_for_anonymous: bool = opt(False, "Anonymous clients may read presence.")
    allow_presence_for_subscriber: bool = opt(False, "Subscribers may read presence.")
    allow_presence_for_client: bool = opt(False, "Any authenticated client may read presence.")
    allow_history_for_anonymous: bool = opt(False, "Anonymous clients may read history.")
    allow_history_for_subscriber: bool = opt(False, "Subscribers may read history.")
    allow_history_for_client: bool = opt(False, "Any authenticated client may read history.")
    allow_user_limited_channels: bool = opt(False, "Allow channels limited to users listed after `#`.")
    channel_regex: str = opt("", "Channel names (without namespace) must match this regular expression.")
    publication_data_format: str = opt("", "`json`, `binary` or empty (any).")
    subscribe_proxy_enabled: bool = opt(False, "Ask a proxy whether to allow subscriptions.")
    subscribe_proxy_name: str = opt("default", "Proxy for subscriptions.")
    publish_proxy_enabled: bool = opt(False, "Ask a proxy whether to allow publications.")
    publish_proxy_name: str = opt("default", "Proxy for publications.")
    sub_refresh_proxy_enabled: bool = opt(False, "Refresh subscriptions through a proxy.")
    sub_refresh_proxy_name: str = opt("default", "Proxy for subscription refreshes.")
    subscribe_stream_proxy_enabled: bool = opt(False, "Stream publications from a proxy.")
    subscribe_stream_proxy_name: str = opt("default", "Proxy for subscription streams.")
    subscribe_stream_proxy_bidirectional: bool = opt(False, "Let clients send into the proxy stream.")
    subscription_type: str = opt("", "Empty (stream), `map` or `shared_poll`.")
    map: MapOptions = section(MapOptions, "Options of map subscriptions.")
    shared_poll: SharedPollOptions = section(SharedPollOptions, "Options of shared poll subscriptions.")


@dataclass(frozen=True)
class NamespaceConfig(ChannelOptions):
    name: str = opt("", "Namespace name: the part of a channel before `:`.")


@dataclass(frozen=True)
class ChannelConfig:
    proxy: ChannelProxiesConfig = section(ChannelProxiesConfig, "The `default` channel proxies.")
    without_namespace: ChannelOptions = section(ChannelOptions, "Options of channels without namespace.")
    namespaces: tuple[NamespaceConfig, ...] = opt((), "Channel namespaces.")
    history_meta_ttl: float = dur("720h", "Lifetime of history meta (epoch, offset).")
    publication_data_format: str = opt("", "`json`, `binary` or empty (any).")
    max_length: int = opt(255, "Longest channel name.")
    private_prefix: str = opt("$", "Prefix of channels that need a subscription token.")
    namespace_boundary: str = opt(":", "Separator between namespace and channel name.")
    user_boundary: str = opt("#", "Separator before the users a channel is limited to.")
    user_separator: str = opt(",", "Separator between users in a user-limited channel.")


@dataclass(frozen=True)
class RpcOptions:
    proxy_enabled: bool = opt(False, "Forward RPC calls to a proxy.")
    proxy_name: str = opt("default", "Proxy for RPC calls.")


@dataclass(frozen=True)
class RpcNamespaceConfig(RpcOptions):
    name: str = opt("", "RPC namespace name: the part of a method before `:`.")


@dataclass(frozen=True)
class RpcPingConfig:
    enabled: bool = opt(False, "Answer the RPC method below without a proxy, for latency checks.")
    method: str = opt("ping", "Name of the ping RPC method.")


@dataclass(frozen=True)
class RpcConfig:
    proxy: ProxyConfig = section(ProxyConfig, "The `default` RPC proxy.")
    without_namespace: RpcOptions = section(RpcOptions, "Options of methods without namespace.")
    namespaces: tuple[RpcNamespaceConfig, ...] = opt((), "RPC namespaces.")
    ping: RpcPingConfig = section(RpcPingConfig)
    namespace_boundary: str = opt(":", "Separator between namespace and method name.")
