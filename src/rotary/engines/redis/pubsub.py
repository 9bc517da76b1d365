"""PUB/SUB connections: one dedicated connection per Redis server, read by one task.

The reading task hands every message to a synchronous callback in arrival order, which is what
keeps one channel's publications in offset order on every node. Subscribing and unsubscribing only
change a local set at once; the commands go out in one write per event-loop pass, so a burst of
subscriptions costs one round trip. A lost connection is reopened with backoff and every channel
held is subscribed again. ``on_interrupted`` names the channels held to the owner as soon as the
connection is lost, and ``on_reconnect`` once they are subscribed again: whatever was published to
them in between never arrived.
See https://centrifugal.dev/docs/server/engines#redis-engine.

The connection is a plain RESP2 connection (``resp.py``) rather than redis-py's PubSub, so that the
reading task is the only owner of reconnection and of the subscribed set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Collection, Iterable
from typing import Any

import hiredis

from rotary.engines.base import EngineError
from rotary.engines.redis.resp import RespConnection, encode_command
from rotary.engines.redis.shards import RedisShard

__all__ = ["Deliver", "Interrupted", "Reconnected", "Subscriber"]

log = logging.getLogger("rotary.engines.redis")

Deliver = Callable[[bytes, bytes], None]
"""Called with (PUB/SUB channel, message) for each message of a channel held."""

Reconnected = Callable[[list[bytes]], None]
"""Called with the channels subscribed again on a new connection, once their commands are sent."""

Interrupted = Callable[[list[bytes]], None]
"""Called with the channels held when the connection is lost, before any reconnect attempt."""

CHANNELS_PER_COMMAND = 512
BACKOFF_MIN, BACKOFF_MAX = 0.05, 5.0


class Subscriber:
    """The channels one server should send us, kept true across reconnects by one reading task."""

    def __init__(self, shard: RedisShard, route: str, deliver: Deliver) -> None:
        self._shard = shard
        self._route = route
        self._deliver = deliver
        sharded = shard.sharded_pubsub
        self._subscribe_verb = "SSUBSCRIBE" if sharded else "SUBSCRIBE"
        self._unsubscribe_verb = "SUNSUBSCRIBE" if sharded else "UNSUBSCRIBE"
        self._held: set[bytes] = set()
        self._confirmed: set[bytes] = set()
        self._pending: set[bytes] = set()
        self._in_flight: dict[bytes, int] = {}
        """SUBSCRIBE commands sent on this connection and not answered yet, per name: only the
        answer to the last one confirms, as an earlier one may have been undone by an UNSUBSCRIBE
        sent after it (a subscribe abandoned at the I/O timeout)."""
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._conn: RespConnection | None = None
        self._flush_scheduled = False
        self._task: asyncio.Task[None] | None = None
        self._dispatch: dict[bytes, Callable[[list[Any]], None]] = {
            b"message": self._on_message,
            b"smessage": self._on_message,
            b"subscribe": self._on_subscribed,
            b"ssubscribe": self._on_subscribed,
            b"pong": self._on_pong,
        }
        self._pings: deque[asyncio.Future[None]] = deque()
        self._served = False
        self.on_reconnect: Reconnected | None = None
        self.on_interrupted: Interrupted | None = None

    @property
    def holds(self) -> bool:
        return bool(self._held)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"rotary.redis-pubsub.{self._route}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for name in list(self._waiters):
            self._settle_waiters(name, EngineError("the Redis PUB/SUB connection is closed"))

    async def subscribe(self, names: Collection[bytes]) -> None:
        """Returns once Redis confirmed every name; raises EngineError after the I/O timeout."""
        fresh = [name for name in names if name not in self._held]
        self._held.update(fresh)
        self._pending.update(fresh)
        loop = asyncio.get_running_loop()
        waiters = []
        for name in names:
            if name not in self._confirmed:
                waiter = loop.create_future()
                self._waiters.setdefault(name, []).append(waiter)
                waiters.append(waiter)
        if not waiters:
            return
        self._schedule_flush()
        try:
            async with asyncio.timeout(self._shard.io_timeout):
                await asyncio.gather(*waiters)
        except TimeoutError:
            error = EngineError(f"redis {self._shard.name}: subscribe not confirmed in time")
            unconfirmed = [name for name in fresh if name not in self._confirmed]
            for name in unconfirmed:
                self._settle_waiters(name, error)
            self.unsubscribe(unconfirmed)
            raise error from None

    def unsubscribe(self, names: Iterable[bytes]) -> None:
        """Takes effect at once: messages of these names are dropped from now on. A subscribe still
        waiting for one of them fails: the channel it waits for will not be live."""
        withdrawn = EngineError(f"redis {self._shard.name}: subscribe withdrawn before it was confirmed")
        for name in names:
            if name in self._held:
                self._held.discard(name)
                self._confirmed.discard(name)
                self._pending.add(name)
                self._settle_waiters(name, withdrawn)
        self._schedule_flush()

    def _settle_waiters(self, name: bytes, error: EngineError | None = None) -> None:
        """Ends the waits for a name: confirmed, or failed (timed out, withdrawn, connection closed)."""
        for waiter in self._waiters.pop(name, ()):
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def ping(self) -> None:
        """A round trip on the PUB/SUB connection.

        Redis answers in order on one connection, so when the pong arrives every message published
        before the ping was sent has been handed to ``deliver``.
        """
        if self._conn is None:
            raise EngineError(f"redis {self._shard.name}: PUB/SUB is not connected")
        self._flush()
        waiter = asyncio.get_running_loop().create_future()
        self._pings.append(waiter)
        self._conn.send([encode_command("PING")])
        try:
            async with asyncio.timeout(self._shard.io_timeout):
                await waiter
        except TimeoutError:
            raise EngineError(f"redis {self._shard.name}: PUB/SUB ping not answered in time") from None

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._pending:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Sends what changed since the last pass; while disconnected, the reconnect sends it all."""
        self._flush_scheduled = False
        if self._conn is None:
            return
        pending, self._pending = self._pending, set()
        wanted = [name for name in pending if name in self._held]
        dropped = [name for name in pending if name not in self._held]
        for name in wanted:
            self._in_flight[name] = self._in_flight.get(name, 0) + 1
        self._conn.send(
            [*self._commands(self._subscribe_verb, wanted), *self._commands(self._unsubscribe_verb, dropped)]
        )

    def _commands(self, verb: str, names: list[bytes]) -> list[bytes]:
        """Batches of names; in a Cluster one batch per slot, as sharded PUB/SUB demands."""
        by_slot: dict[int, list[bytes]] = {}
        for name in names:
            by_slot.setdefault(self._shard.slot(name), []).append(name)
        return [
            encode_command(verb, *batch[i : i + CHANNELS_PER_COMMAND])
            for batch in by_slot.values()
            for i in range(0, len(batch), CHANNELS_PER_COMMAND)
        ]

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                conn = await RespConnection.open(self._shard, self._route)
            except (OSError, TimeoutError, EngineError) as exc:
                log.warning("redis %s PUB/SUB: cannot connect (%s), retrying", self._shard.name, exc)
            else:
                delay = BACKOFF_MIN
                await self._serve(conn)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _serve(self, conn: RespConnection) -> None:
        self._conn = conn
        self._confirmed.clear()
        self._pending.clear()
        names = sorted(self._held)
        self._in_flight = dict.fromkeys(names, 1)
        conn.send(self._commands(self._subscribe_verb, names))
        if self._served and names and self.on_reconnect is not None:
            self.on_reconnect(names)
        self._served = True
        try:
            while True:
                for reply in await conn.read():
                    self._handle(reply)
        except (OSError, EOFError) as exc:
            log.warning(
                "redis %s PUB/SUB connection lost (%s); resubscribing %d channels after reconnect",
                self._shard.name,
                exc,
                len(self._held),
            )
            self._conn = None
            if self._held and self.on_interrupted is not None:
                self.on_interrupted(sorted(self._held))
        finally:
            self._conn = None
            conn.close()
            while self._pings:
                waiter = self._pings.popleft()
                if not waiter.done():
                    waiter.set_exception(EngineError(f"redis {self._shard.name}: PUB/SUB connection lost"))

    def _handle(self, reply: Any) -> None:
        if isinstance(reply, list) and reply:
            handle = self._dispatch.get(reply[0])
            if handle is not None:
                handle(reply)
        elif reply == b"PONG":  # a ping while subscribed to nothing gets the plain reply
            self._on_pong(reply)
        elif isinstance(reply, hiredis.ReplyError):
            log.error("redis %s PUB/SUB error: %s", self._shard.name, reply)

    def _on_message(self, reply: list[Any]) -> None:
        name = reply[1]
        if name in self._held:
            try:
                self._deliver(name, reply[2])
            except Exception:
                log.exception("redis %s: handling a message of %r failed", self._shard.name, name)

    def _on_pong(self, reply: Any) -> None:
        if self._pings:
            waiter = self._pings.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _on_subscribed(self, reply: list[Any]) -> None:
        name = reply[1]
        left = self._in_flight.get(name, 1) - 1
        if left > 0:
            self._in_flight[name] = left
            return
        self._in_flight.pop(name, None)
        if name in self._held:
            self._confirmed.add(name)
            self._settle_waiters(name)
