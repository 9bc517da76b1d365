"""Keys rotary reads but does not act on yet: setting one makes rotary refuse to start.

Every Centrifugo key loads, so a Centrifugo config file is read whole. A key whose value would change
nothing must not pass silently, though: a config asking for map subscriptions or async consumers would
otherwise start a server that quietly does something else. ``UNBUILT`` is the one list of such keys;
building a feature means deleting its lines here. Only the key that turns a feature on is listed:
the options beneath it (``grpc_api.port``, ``admin.password``...) change nothing in Centrifugo either
while the feature is off, and rotary refuses to turn it on.
See https://centrifugal.dev/docs/server/configuration
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rotary.server.config.durations import format_duration
from rotary.server.config.fields import Kind, kind_of

LIST_STEP = "[]"
"""Written after a list key in a path, it stands for every item of the list."""


@dataclass(frozen=True)
class Unbuilt:
    """A key that rotary refuses when it holds anything but its default (or an ``honoured`` value)."""

    path: str
    feature: str
    honoured: tuple[Any, ...] = ()


def _per_namespace(key: str, feature: str, honoured: tuple[Any, ...] = ()) -> tuple[Unbuilt, ...]:
    scopes = ("channel.without_namespace", f"channel.namespaces{LIST_STEP}")
    return tuple(Unbuilt(f"{scope}.{key}", feature, honoured) for scope in scopes)


UNBUILT: tuple[Unbuilt, ...] = (
    # The HTTP server.
    Unbuilt("http_server.h2c_external", "HTTP/2 without TLS (h2c)"),
    # Engines.
    Unbuilt("engine.redis.sentinel_client_name", "naming Sentinel connections"),
    Unbuilt("engine.redis.replica_client.enabled", "reading from Redis replicas"),
    Unbuilt("engine.redis.presence_hash_field_ttl", "presence kept with hash field TTLs"),
    Unbuilt("engine.redis.presence_user_mapping", "the presence user mapping"),
    Unbuilt("broker.redis.sentinel_client_name", "naming Sentinel connections"),
    Unbuilt("broker.redis.replica_client.enabled", "reading from Redis replicas"),
    Unbuilt("broker.nats.allow_wildcards", "wildcard subscriptions over NATS"),
    Unbuilt("broker.nats.raw_mode.enabled", "the NATS raw mode"),
    Unbuilt("presence_manager.redis.sentinel_client_name", "naming Sentinel connections"),
    Unbuilt("presence_manager.redis.replica_client.enabled", "reading from Redis replicas"),
    Unbuilt("presence_manager.redis.presence_hash_field_ttl", "presence kept with hash field TTLs"),
    Unbuilt("presence_manager.redis.presence_user_mapping", "the presence user mapping"),
    Unbuilt("map_broker.type", "map subscriptions"),
    Unbuilt("controller.enabled", "a dedicated controller"),
    Unbuilt(f"consumers{LIST_STEP}.enabled", "async consumers"),
    # Clients and channels.
    Unbuilt("client.concurrency", "concurrent command handling"),
    Unbuilt("client.channel_position_max_time_lag", "a tolerated position lag"),
    *_per_namespace("subscription_type", "map and shared poll subscriptions", honoured=("stream",)),
    *_per_namespace("map_clients_presence_channel_prefix", "map subscriptions"),
    *_per_namespace("map_users_presence_channel_prefix", "map subscriptions"),
    # Transports.
    Unbuilt("websocket.read_buffer_size", "WebSocket buffer tuning"),
    Unbuilt("websocket.write_buffer_size", "WebSocket buffer tuning"),
    Unbuilt("websocket.use_write_buffer_pool", "WebSocket buffer tuning"),
    Unbuilt("uni_websocket.read_buffer_size", "WebSocket buffer tuning"),
    Unbuilt("uni_websocket.write_buffer_size", "WebSocket buffer tuning"),
    Unbuilt("uni_websocket.use_write_buffer_pool", "WebSocket buffer tuning"),
    Unbuilt("uni_grpc.tls.server_ca_pem", "verifying servers (a client's TLS option)"),
    Unbuilt("uni_grpc.tls.insecure_skip_verify", "skipping verification (a client's TLS option)"),
    Unbuilt("uni_grpc.tls.server_name", "a verified server name (a client's TLS option)"),
    Unbuilt("grpc_api.tls.server_ca_pem", "verifying servers (a client's TLS option)"),
    Unbuilt("grpc_api.tls.insecure_skip_verify", "skipping verification (a client's TLS option)"),
    Unbuilt("grpc_api.tls.server_name", "a verified server name (a client's TLS option)"),
    # Server API and observability.
    Unbuilt("prometheus.native_histograms", "native histograms (protobuf scrapes)"),
    Unbuilt("swagger.enabled", "the Swagger UI"),
    Unbuilt("debug.enabled", "profiling endpoints"),
    Unbuilt("opentelemetry.google_cloud_adc_auth", "Google Cloud ADC authentication of the exporter"),
    Unbuilt("graphite.enabled", "Graphite metrics export"),
    Unbuilt("node.info_metrics_aggregate_interval", "aggregated node metrics"),
)


def unbuilt_problems(config: Any) -> list[str]:
    """One problem per key of ``UNBUILT`` that ``config`` sets, each naming the key and its default."""
    problems: list[str] = []
    for entry in UNBUILT:
        for path, section, name in _places(entry.path)(config):
            value = getattr(section, name)
            schema: type = type(section)
            field = _field(schema, name)
            default = _default(field)
            if value != default and value not in entry.honoured:
                problems.append(
                    f"{path}: {entry.feature} is not supported by rotary yet; "
                    f"remove the key or set it to {_spelled(default, field)}"
                )
    return problems


def unbuilt_paths() -> frozenset[str]:
    return frozenset(entry.path for entry in UNBUILT)


Places = Callable[[Any], Iterable[tuple[str, Any, str]]]
"""(concrete path, section, key) of every place a table path reaches in a config."""


@functools.cache
def _places(table_path: str) -> Places:
    """How to reach the places of a table path, built once per path: the table is walked at every
    start, ``checkconfig`` and reload, and most paths go through no list, so one C getter finds them."""
    head, listed, rest = table_path.partition(LIST_STEP + ".")
    if not listed:
        path = table_path.removesuffix(LIST_STEP)  # a list as a whole
        parent, _, name = path.rpartition(".")
        if not parent:
            return lambda config: ((name, config, name),)
        section = operator.attrgetter(parent)
        return lambda config: ((path, section(config), name),)
    items = operator.attrgetter(head)
    inner = _places(rest)

    def each_item(config: Any) -> Iterator[tuple[str, Any, str]]:
        for index, item in enumerate(items(config)):
            for path, section, name in inner(item):
                yield f"{head}[{index}].{path}", section, name

    return each_item


@functools.cache
def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


@functools.cache
def _default(field: dataclasses.Field[Any]) -> Any:
    """A field's default, built once (it is only compared and spelled, never changed)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _spelled(value: Any, field: dataclasses.Field[Any]) -> str:
    """A default as a config file spells it."""
    if kind_of(field) is Kind.DURATION:
        return f'"{format_duration(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
