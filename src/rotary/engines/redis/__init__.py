"""The Redis engine: a broker with history, a presence manager and a controller on Redis.

Standalone, Sentinel and Cluster deployments, and client-side sharding over several of them.
See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from rotary.engines.redis.broker import RedisBroker, RedisBrokerOptions
from rotary.engines.redis.controller import RedisController
from rotary.engines.redis.presence import RedisPresenceManager, RedisPresenceOptions
from rotary.engines.redis.shards import RedisOptions, RedisTls

__all__ = [
    "RedisBroker",
    "RedisBrokerOptions",
    "RedisController",
    "RedisOptions",
    "RedisPresenceManager",
    "RedisPresenceOptions",
    "RedisTls",
]
