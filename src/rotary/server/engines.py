"""Chooses and builds the broker, presence manager and controller from the config.

Centrifugo's rules (https://centrifugal.dev/docs/server/engines): `engine.type` gives both parts at
once (memory or redis); an enabled `broker` or `presence_manager` section replaces that part. Nodes
need a controller to reach each other; it rides on the broker's service (Redis or NATS PUB/SUB), and a
lone node with the memory broker talks to itself through the memory controller. Only the server layer
imports concrete engines, and only the one it uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rotary.engines.base import Broker, Controller, PresenceManager
from rotary.engines.memory import MemoryBroker, MemoryPresenceManager
from rotary.engines.memory_controller import MemoryController
from rotary.server.config.schema import Config
from rotary.server.config.schema_engines import RedisPrefixedConfig
from rotary.server.tls.context import ClientTls, client_tls

if TYPE_CHECKING:
    from rotary.engines.redis import RedisOptions

SUPPORTED_BROKERS = ("memory", "redis", "nats")
SUPPORTED_PRESENCE = ("memory", "redis")


@dataclass(slots=True)
class Engines:
    broker: Broker
    presence_manager: PresenceManager
    controller: Controller | None


def broker_type(config: Config) -> str:
    return config.broker.type if config.broker.enabled else config.engine.type


def presence_type(config: Config) -> str:
    return config.presence_manager.type if config.presence_manager.enabled else config.engine.type


def engine_keys(config: Config) -> list[str]:
    """The config sections of the parts that reach outside the process, to name them in errors."""
    keys = []
    broker = broker_type(config)
    if broker != "memory":
        keys.append(f"broker.{broker}" if config.broker.enabled else f"engine.{broker}")
    presence = presence_type(config)
    if presence != "memory":
        keys.append(
            f"presence_manager.{presence}" if config.presence_manager.enabled else f"engine.{presence}"
        )
    return list(dict.fromkeys(keys)) or ["engine.type"]


def problems(config: Config) -> list[str]:
    """What rotary cannot build from this config, each with its key path."""
    found: list[str] = []
    kind = broker_type(config)
    if kind not in SUPPORTED_BROKERS:
        key = "broker.type" if config.broker.enabled else "engine.type"
        found.append(
            f"{key}: {kind!r} is not supported by rotary (use one of {', '.join(SUPPORTED_BROKERS)})"
        )
    if presence_type(config) not in SUPPORTED_PRESENCE:
        key = "presence_manager.type" if config.presence_manager.enabled else "engine.type"
        found.append(f"{key}: {presence_type(config)!r} is not supported (use memory or redis)")
    if kind == "nats":
        found.extend(_history_on_nats(config))
    return found


def _history_on_nats(config: Config) -> list[str]:
    channel = config.channel
    spaces = [("channel.without_namespace", channel.without_namespace)]
    spaces += [(f"channel.namespaces[{i}] ({ns.name})", ns) for i, ns in enumerate(channel.namespaces)]
    return [
        f"{path}: history, recovery and positioning need a broker with history; the NATS broker has none "
        "(use engine.type redis, or turn history off in this namespace)"
        for path, opts in spaces
        if opts.history_size > 0 or opts.history_ttl > 0 or opts.force_recovery or opts.force_positioning
    ]


def build_engines(config: Config) -> Engines:
    node_id = str(uuid.uuid4())
    meta_ttl = config.channel.history_meta_ttl
    broker: Broker
    controller: Controller | None = None
    kind = broker_type(config)
    if kind == "redis":
        from rotary.engines.redis import RedisBroker, RedisBrokerOptions, RedisController

        source = config.broker.redis if config.broker.enabled else config.engine.redis
        redis = _redis_options(source)
        broker = RedisBroker(RedisBrokerOptions(redis, source.history_use_lists, meta_ttl))
        controller = RedisController(node_id, redis)
    elif kind == "nats":
        from rotary.engines.nats import NatsBroker, NatsController, NatsOptions

        nats = config.broker.nats
        tls = client_tls(nats.tls) if nats.tls.enabled else None
        options = NatsOptions.from_config(
            nats, tls=tls.context if tls else None, tls_server_name=tls.server_name if tls else ""
        )
        broker = NatsBroker(options)
        controller = NatsController(node_id, options)
    else:
        broker = MemoryBroker(history_meta_ttl=meta_ttl)
        # One node alone still runs its control channel, as Centrifugo's memory broker does: its node
        # info goes round every few seconds and counts as control messages sent and received.
        controller = MemoryController(node_id)
    presence: PresenceManager
    if presence_type(config) == "redis":
        from rotary.engines.redis import RedisPresenceManager, RedisPresenceOptions

        source_p = config.presence_manager.redis if config.presence_manager.enabled else config.engine.redis
        presence = RedisPresenceManager(RedisPresenceOptions(_redis_options(source_p), source_p.presence_ttl))
    else:
        presence = MemoryPresenceManager()
    return Engines(broker, presence, controller)


def _redis_options(section: RedisPrefixedConfig) -> RedisOptions:
    """Options of one Redis section, with the TLS contexts built from its enabled TLS sections
    (their material was checked by validation: ``check_client_tls``)."""
    from rotary.engines.redis import RedisOptions, RedisTls

    def tls(enabled: bool, built: Callable[[], ClientTls]) -> RedisTls | None:
        if not enabled:
            return None
        made = built()
        return RedisTls(made.context, made.server_name)

    return RedisOptions.from_config(
        section,
        tls=tls(section.tls.enabled, lambda: client_tls(section.tls)),
        sentinel_tls=tls(section.sentinel_tls.enabled, lambda: client_tls(section.sentinel_tls)),
    )
