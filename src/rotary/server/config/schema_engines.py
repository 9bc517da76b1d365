"""Schema of engines, brokers, presence managers, the controller and async consumers.

Section inheritance mirrors how Centrifugo flattens shared option groups into one JSON object: the
Redis connection options sit beside the broker or presence options in the same object.
See https://centrifugal.dev/docs/server/engines and https://centrifugal.dev/docs/server/consumers
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rotary.server.config.fields import dur, opt, optional_section, passthrough, section
from rotary.server.config.schema_transports import TLSConfig


@dataclass(frozen=True)
class RedisReplicaClientConfig:
    enabled: bool = opt(False, "Read from replicas where the operation allows it.")


@dataclass(frozen=True)
class RedisConfig:
    """Connection to one Redis setup: standalone addresses, a cluster or a sentinel group."""

    address: tuple[str, ...] = opt(("redis://127.0.0.1:6379",), "Redis addresses; several mean sharding.")
    connect_timeout: float = dur("1s", "Timeout of establishing a connection.")
    io_timeout: float = dur("4s", "Timeout of one read or write.")
    db: int = opt(0, "Database number.")
    user: str = opt("", "ACL user.")
    password: str = opt("", "Password.")
    client_name: str = opt("", "Name shown by CLIENT LIST.")
    force_resp2: bool = opt(False, "Speak RESP2 even when the server offers RESP3.")
    cluster_address: tuple[str, ...] = opt((), "Seed addresses of a Redis Cluster.")
    tls: TLSConfig = section(TLSConfig, "TLS towards Redis.")
    sentinel_address: tuple[str, ...] = opt((), "Sentinel addresses.")
    sentinel_user: str = opt("", "Sentinel ACL user.")
    sentinel_password: str = opt("", "Sentinel password.")
    sentinel_master_name: str = opt("", "Name of the master the sentinels watch.")
    sentinel_client_name: str = opt("", "Client name on sentinel connections.")
    sentinel_tls: TLSConfig = section(TLSConfig, "TLS towards sentinels.")
    replica_client: RedisReplicaClientConfig = section(RedisReplicaClientConfig)


@dataclass(frozen=True)
class RedisPrefixedConfig(RedisConfig):
    prefix: str = opt("centrifugo", "Prefix of every key and PUB/SUB channel.")


@dataclass(frozen=True)
class RedisBrokerConfig(RedisPrefixedConfig):
    history_use_lists: bool = opt(False, "Keep history in lists instead of streams.")


@dataclass(frozen=True)
class RedisPresenceManagerConfig(RedisPrefixedConfig):
    presence_ttl: float = dur("60s", "How long a presence entry lives without refresh.")
    presence_hash_field_ttl: bool = opt(False, "Expire presence with hash field TTLs (Redis >= 7.4).")
    presence_user_mapping: bool = opt(False, "Keep a user -> connections mapping for fast stats.")


@dataclass(frozen=True)
class RedisEngineConfig(RedisPrefixedConfig):
    history_use_lists: bool = opt(False, "Keep history in lists instead of streams.")
    presence_ttl: float = dur("60s", "How long a presence entry lives without refresh.")
    presence_hash_field_ttl: bool = opt(False, "Expire presence with hash field TTLs (Redis >= 7.4).")
    presence_user_mapping: bool = opt(False, "Keep a user -> connections mapping for fast stats.")


@dataclass(frozen=True)
class RedisMapBrokerConfig(RedisPrefixedConfig):
    cleanup_interval: float = dur("1s", "How often expired map keys are removed.")
    cleanup_batch_size: int = opt(100, "Keys removed per cleanup step.")
    idempotent_result_ttl: float = dur("5m", "How long idempotent results are remembered.")
    skip_pub_sub: bool = opt(False, "Do not publish map changes over PUB/SUB.")


@dataclass(frozen=True)
class EngineConfig:
    type: str = opt("memory", "`memory` or `redis`: broker and presence manager in one.")
    redis: RedisEngineConfig = section(RedisEngineConfig, "Options of the Redis engine.")


@dataclass(frozen=True)
class NatsRawModeConfig:
    enabled: bool = opt(False, "Exchange raw payloads with NATS subjects instead of the internal format.")
    channel_replacements: dict[str, str] = section(dict, "Substrings of channel names to replace.")
    prefix: str = opt("", "Subject prefix in raw mode.")


@dataclass(frozen=True)
class NatsBrokerConfig:
    url: str = opt("nats://localhost:4222", "NATS server URL.")
    dial_timeout: float = dur("1s", "Timeout of establishing a connection.")
    write_timeout: float = dur("1s", "Timeout of one write.")
    tls: TLSConfig = section(TLSConfig, "TLS towards NATS.")
    prefix: str = opt("centrifugo", "Prefix of every subject.")
    allow_wildcards: bool = opt(False, "Allow wildcard subscriptions.")
    raw_mode: NatsRawModeConfig = section(NatsRawModeConfig)


@dataclass(frozen=True)
class RedisNatsBrokerConfig:
    """The experimental Redis + NATS broker: history in Redis, PUB/SUB over NATS."""

    redis: RedisBrokerConfig = section(RedisBrokerConfig, "Redis side (history).")
    nats: NatsBrokerConfig = section(NatsBrokerConfig, "NATS side (PUB/SUB).")


@dataclass(frozen=True)
class PostgresOutboxConfig:
    poll_interval: float = dur("100ms", "How often the outbox table is polled.")
    batch_size: int = opt(1000, "Outbox rows read per poll.")


@dataclass(frozen=True)
class PostgresConnectionConfig:
    """Connection to PostgreSQL, shared by the broker, the map broker and the controller."""

    dsn: str = opt("", "Connection string.")
    tls: TLSConfig = section(TLSConfig, "TLS towards PostgreSQL.")


@dataclass(frozen=True)
class PostgresBrokerConfig(PostgresConnectionConfig):
    pool_size: int = opt(16, "Connections in the pool.")
    num_shards: int = opt(8, "Shards of the stream tables.")
    cleanup_interval: float = dur("1m", "How often expired rows are removed.")
    idempotent_result_ttl: float = dur("5m", "How long idempotent results are remembered.")
    binary_data: bool = opt(False, "Store payloads as bytea instead of JSON.")
    stream_retention: float = dur("24h", "How long stream rows are kept.")
    use_notify: bool = opt(False, "Wake readers with LISTEN/NOTIFY instead of polling only.")
    notify_dsn: str = opt("", "Connection string of the LISTEN connection (the dsn when empty).")
    table_prefix: str = opt("cf", "Prefix of every table name.")
    skip_schema_init: bool = opt(False, "Do not create the tables at start.")
    outbox: PostgresOutboxConfig = section(PostgresOutboxConfig)
    partition_lookahead_days: int = opt(2, "Daily partitions created ahead.")
    partition_retention_days: int = opt(7, "Daily partitions kept.")


@dataclass(frozen=True)
class PostgresMapBrokerConfig(PostgresBrokerConfig):
    ttl_check_interval: float = dur("1s", "How often expired map keys are looked for.")


@dataclass(frozen=True)
class PostgresControllerConfig(PostgresConnectionConfig):
    pool_size: int = opt(8, "Connections in the pool.")
    num_shards: int = opt(1, "Shards of the control table.")
    table_prefix: str = opt("cf", "Prefix of every table name.")
    poll_interval: float = dur("50ms", "How often the control table is polled.")
    use_notify: bool = opt(False, "Wake readers with LISTEN/NOTIFY instead of polling only.")
    notify_dsn: str = opt("", "Connection string of the LISTEN connection (the dsn when empty).")
    partition_retention_days: int = opt(1, "Daily partitions kept.")
    partition_lookahead_days: int = opt(2, "Daily partitions created ahead.")
    partition_cleanup_interval: float = dur("1m", "How often old partitions are dropped.")
    batch_size: int = opt(1000, "Control messages read per poll.")
    skip_schema_init: bool = opt(False, "Do not create the tables at start.")


@dataclass(frozen=True)
class BrokerConfig:
    enabled: bool = opt(False, "Use this section instead of the engine's broker.")
    type: str = opt("memory", "`memory`, `redis`, `nats`, `redisnats` or `postgres`.")
    redis: RedisBrokerConfig = section(RedisBrokerConfig, "Options of the Redis broker.")
    nats: NatsBrokerConfig = section(NatsBrokerConfig, "Options of the NATS broker.")
    postgres: PostgresBrokerConfig = section(PostgresBrokerConfig, "Options of the PostgreSQL broker.")
    redisnats: RedisNatsBrokerConfig | None = optional_section(
        "Options of the Redis + NATS broker; absent from dumps until set, as in Centrifugo."
    )


@dataclass(frozen=True)
class PresenceManagerConfig:
    enabled: bool = opt(False, "Use this section instead of the engine's presence manager.")
    type: str = opt("memory", "`memory` or `redis`.")
    redis: RedisPresenceManagerConfig = section(RedisPresenceManagerConfig)


@dataclass(frozen=True)
class MapBrokerConfig:
    type: str = opt("memory", "`memory`, `redis` or `postgres`.")
    redis: RedisMapBrokerConfig = section(RedisMapBrokerConfig)
    postgres: PostgresMapBrokerConfig = section(
        PostgresMapBrokerConfig, "Options of the PostgreSQL map broker."
    )


@dataclass(frozen=True)
class ControllerConfig:
    enabled: bool = opt(False, "Use a dedicated controller for inter-node messages.")
    type: str = opt("", "Controller type, e.g. `postgres`.")
    postgres: PostgresControllerConfig = section(
        PostgresControllerConfig, "Options of the PostgreSQL controller."
    )


@dataclass(frozen=True)
class ConsumerConfig:
    """One queue consumer; the per-backend sub-sections are kept as given."""

    name: str = opt("", "Unique consumer name.")
    enabled: bool = opt(False, "Run this consumer.")
    type: str = opt(
        "", "Backend: postgresql, kafka, nats_jetstream, redis_stream, google_pub_sub, aws_sqs, ..."
    )
    postgresql: dict[str, Any] = passthrough("PostgreSQL outbox options.")
    kafka: dict[str, Any] = passthrough("Kafka options.")
    nats_jetstream: dict[str, Any] = passthrough("NATS JetStream options.")
    redis_stream: dict[str, Any] = passthrough("Redis Stream options.")
    google_pub_sub: dict[str, Any] = passthrough("Google Pub/Sub options.")
    aws_sqs: dict[str, Any] = passthrough("AWS SQS options.")
    azure_service_bus: dict[str, Any] = passthrough("Azure Service Bus options.")
