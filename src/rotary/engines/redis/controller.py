"""The Redis controller: messages between nodes over PUB/SUB.

Every node listens on ``<prefix>.control`` (messages for all nodes, the sender included) and on
``<prefix>.node.<node id>`` (messages for it alone). The messages are opaque bytes: the node layer
encodes its commands (disconnect, unsubscribe, node info, survey, ...). Control always goes over
the first shard, so every node meets every other one there.
See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rotary.engines.redis.keys import KeySpace
from rotary.engines.redis.pubsub import Subscriber
from rotary.engines.redis.shards import RedisOptions, RedisShard, ShardSet

__all__ = ["RedisController"]


class RedisController:
    """A Controller on Redis PUB/SUB for the node ``node_id``."""

    def __init__(self, node_id: str, options: RedisOptions | None = None) -> None:
        self.node_id = node_id
        self._options = options or RedisOptions()
        self._keys = KeySpace(self._options.prefix)
        self._shards = ShardSet(self._options)
        self._subscribers: list[Subscriber] = []
        self._handler: Callable[[bytes], None] | None = None

    async def start(self, handler: Callable[[bytes], None]) -> None:
        """Returns once both control channels are subscribed, so no message sent afterwards is missed."""
        self._handler = handler
        if self._subscribers:
            return
        shard = await self._control_shard()
        # In a Cluster the two names may sit on different nodes, each read by its own subscriber.
        routes: dict[str, list[bytes]] = {}
        for name in (self._keys.control(), self._keys.node(self.node_id)):
            routes.setdefault(shard.route(name), []).append(name.encode())
        self._subscribers = [Subscriber(shard, route, self._deliver) for route in routes]
        for subscriber in self._subscribers:
            subscriber.start()
        await asyncio.gather(
            *(s.subscribe(names) for s, names in zip(self._subscribers, routes.values(), strict=True))
        )

    async def publish_control(self, data: bytes, to_node: str = "") -> None:
        shard = await self._control_shard()
        name = self._keys.node(to_node) if to_node else self._keys.control()
        await shard.pipeline.command(name, shard.publish_command.upper(), name, data)

    async def close(self) -> None:
        subscribers, self._subscribers = self._subscribers, []
        for subscriber in subscribers:
            await subscriber.close()
        await self._shards.close()

    async def _control_shard(self) -> RedisShard:
        return (await self._shards.connect())[0]

    def _deliver(self, name: bytes, message: bytes) -> None:
        if self._handler is not None:
            self._handler(message)
