"""The engines a Node runs on, built from constructor arguments (no config file).

:class:`MemoryEngine` keeps everything in this process; :class:`RedisEngine` and :class:`NatsEngine`
join several nodes (processes or machines) into one cluster, as Centrifugo's engines do
(https://centrifugal.dev/docs/server/engines). Their client libraries come with the extras
``rotary[redis]`` and ``rotary[nats]`` and are imported only when such an engine is built.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

from rotary.engines.base import Broker, Controller, PresenceManager
from rotary.engines.memory import MemoryBroker, MemoryPresenceManager


@dataclass(slots=True)
class _Parts:
    broker: Broker
    presence_manager: PresenceManager
    controller: Controller | None


class Engine:
    """Where a Node keeps publications, history and presence, and how it reaches other nodes."""

    def _parts(self, node_id: str) -> _Parts:
        raise NotImplementedError


def _require(module: str, engine: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{engine} needs the {extra!r} extra: pip install 'rotary[{extra}]'")


class MemoryEngine(Engine):
    """One process only: history and presence live in memory and are lost at restart."""

    def __init__(self, *, history_meta_ttl: float = 0.0) -> None:
        """``history_meta_ttl``: seconds a channel's stream position outlives its last publication
        when the channel names none; 0 forever."""
        self._meta_ttl = history_meta_ttl

    def _parts(self, node_id: str) -> _Parts:
        return _Parts(MemoryBroker(history_meta_ttl=self._meta_ttl), MemoryPresenceManager(), None)


class RedisEngine(Engine):
    """Publications, history and presence in Redis, shared by every node using the same Redis and
    prefix. Several ``addresses`` shard channels over several Redis servers."""

    def __init__(
        self,
        address: str = "redis://127.0.0.1:6379",
        *,
        addresses: Sequence[str] = (),
        prefix: str = "centrifugo",
        db: int = 0,
        user: str = "",
        password: str = "",
        presence_ttl: float = 60.0,
        history_meta_ttl: float = 0.0,
        history_use_lists: bool = False,
        connect_timeout: float = 1.0,
        io_timeout: float = 4.0,
    ) -> None:
        _require("redis", "RedisEngine", "redis")
        from rotary.engines.redis import RedisOptions

        self._redis = RedisOptions(
            addresses=tuple(addresses) or (address,),
            prefix=prefix,
            db=db,
            user=user,
            password=password,
            connect_timeout=connect_timeout,
            io_timeout=io_timeout,
        )
        self._presence_ttl = presence_ttl
        self._meta_ttl = history_meta_ttl
        self._use_lists = history_use_lists

    def _parts(self, node_id: str) -> _Parts:
        from rotary.engines.redis import (
            RedisBroker,
            RedisBrokerOptions,
            RedisController,
            RedisPresenceManager,
            RedisPresenceOptions,
        )

        return _Parts(
            RedisBroker(RedisBrokerOptions(self._redis, self._use_lists, self._meta_ttl)),
            RedisPresenceManager(RedisPresenceOptions(self._redis, self._presence_ttl)),
            RedisController(node_id, self._redis),
        )


class NatsEngine(Engine):
    """Publications through NATS between nodes. NATS keeps nothing: no history or recovery (reading
    history fails with error 100), and presence stays in each node's memory."""

    def __init__(self, url: str = "nats://localhost:4222", *, prefix: str = "centrifugo") -> None:
        _require("nats", "NatsEngine", "nats")
        self._url = url
        self._prefix = prefix

    def _parts(self, node_id: str) -> _Parts:
        from rotary.engines.nats import NatsBroker, NatsController, NatsOptions

        options = NatsOptions(url=self._url, prefix=self._prefix)
        return _Parts(NatsBroker(options), MemoryPresenceManager(), NatsController(node_id, options))
