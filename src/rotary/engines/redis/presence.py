"""The Redis presence manager: who is in a channel, shared by every node.

Per channel a hash client id -> ClientInfo, a hash client id -> user id and a sorted set of the
times entries lapse. Nodes refresh their clients' entries periodically; an entry not refreshed for
``presence_ttl`` belongs to a vanished node and is dropped by the next read. Reads and counts run
as Lua scripts, so the distinct users of ``presence_stats`` are counted inside Redis; concurrent
calls share round trips through the shard's pipeline.
See https://centrifugal.dev/docs/server/presence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from rotary.engines.base import PresenceStats
from rotary.engines.redis.keys import KeySpace
from rotary.engines.redis.pipeline import Script
from rotary.engines.redis.scripts import PRESENCE_ADD, PRESENCE_GET, PRESENCE_REMOVE
from rotary.engines.redis.shards import RedisConfigLike, RedisOptions, ShardSet
from rotary.protocol import pb

__all__ = ["RedisPresenceManager", "RedisPresenceOptions"]


class RedisPresenceConfigLike(RedisConfigLike, Protocol):
    @property
    def presence_ttl(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RedisPresenceOptions:
    redis: RedisOptions = field(default_factory=RedisOptions)
    presence_ttl: float = 60.0

    @classmethod
    def from_config(cls, config: RedisPresenceConfigLike) -> RedisPresenceOptions:
        return cls(RedisOptions.from_config(config), config.presence_ttl)


class RedisPresenceManager:
    """A PresenceManager over one or more Redis shards; connects on first use."""

    def __init__(self, options: RedisPresenceOptions | None = None) -> None:
        self._options = options or RedisPresenceOptions()
        self._keys = KeySpace(self._options.redis.prefix)
        self._shards = ShardSet(self._options.redis)

    async def start(self) -> None:
        """Connects now, so a Redis that is down fails startup instead of the first request."""
        await self._shards.connect()

    async def presence(self, channel: str) -> dict[str, pb.ClientInfo]:
        flat = await self._get(channel, "entries")
        return {_text(flat[i]): pb.ClientInfo.FromString(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def presence_stats(self, channel: str) -> PresenceStats:
        clients, users = await self._get(channel, "stats")
        return PresenceStats(num_clients=int(clients), num_users=int(users))

    async def add_presence(self, channel: str, client_id: str, info: pb.ClientInfo) -> None:
        ttl_ms = max(int(self._options.presence_ttl * 1000), 1)
        args = [ttl_ms, client_id, info.SerializeToString(), info.user]
        await self._run(channel, PRESENCE_ADD, args)

    async def remove_presence(self, channel: str, client_id: str, user_id: str) -> None:
        await self._run(channel, PRESENCE_REMOVE, [client_id])

    async def close(self) -> None:
        await self._shards.close()

    async def _get(self, channel: str, what: str) -> Any:
        return await self._run(channel, PRESENCE_GET, [what])

    async def _run(self, channel: str, script: Script, args: list[Any]) -> Any:
        await self.start()
        _, shard = self._shards.for_channel(channel)
        keys = [
            self._keys.presence_expiry(channel),
            self._keys.presence_info(channel),
            self._keys.presence_users(channel),
        ]
        return await shard.pipeline.script(channel, script, keys, args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
