"""One round trip of a pipeline: every command written at once, every reply read back.

A Cluster needs redis-py, which routes each command to the node of its slot and follows MOVED and
ASK. A standalone server or Sentinel's master takes one plain connection (``resp.py``), which
costs a fraction of redis-py's work per command; it is opened on first use and again after it
failed, so a restarted server or a new Sentinel master is found by the next round trip.
See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import hiredis
from redis.asyncio import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from rotary.engines.redis.resp import RespConnection, encode_command

if TYPE_CHECKING:
    from rotary.engines.redis.shards import RedisShard

__all__ = ["ClusterExchange", "ConnectionExchange", "Exchange"]

Command = Sequence[Any]


class Exchange(Protocol):
    """Sends commands and returns their replies in order, a refused command as its exception
    (NOSCRIPT as ``NoScriptError``); raises when the round trip itself failed."""

    async def __call__(self, commands: Sequence[Command]) -> list[Any]: ...

    async def close(self) -> None: ...


class ClusterExchange:
    def __init__(self, client: RedisCluster) -> None:
        self._client = client

    async def __call__(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))

    async def close(self) -> None:
        """The client belongs to the shard, which closes it."""


class ConnectionExchange:
    def __init__(self, shard: RedisShard) -> None:
        self._shard = shard
        self._conn: RespConnection | None = None

    async def __call__(self, commands: Sequence[Command]) -> list[Any]:
        if self._conn is None:
            self._conn = await RespConnection.open(self._shard, self._shard.name, self._shard.db)
        conn = self._conn
        try:
            conn.send(encode_command(*command) for command in commands)
            replies = [_reply(reply) for reply in await conn.read_exactly(len(commands))]
        except BaseException:
            await self.close()
            raise
        if any(isinstance(reply, ResponseError) and str(reply).startswith("READONLY") for reply in replies):
            # A master demoted to replica: the next round trip asks Sentinel where the master is now.
            await self.close()
        return replies

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()


def _reply(reply: Any) -> Any:
    if not isinstance(reply, hiredis.ReplyError):
        return reply
    text = str(reply)
    if text.startswith("NOSCRIPT"):
        return NoScriptError(text)
    return ResponseError(text)
