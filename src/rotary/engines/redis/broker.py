"""The Redis broker: PUB/SUB between nodes and per-channel history streams in Redis.

One Lua script per publication checks the idempotency key and the version, increments the offset,
appends to the stream (XADD with MAXLEN, or a list with ``history_use_lists``), extends the meta
hash and the stream TTLs, and PUBLISHes; so offsets and PUB/SUB order agree on every node. A
publication without history or idempotency key is a plain PUBLISH with offset 0. Every command
goes through its shard's automatic pipeline, so concurrent publishes share round trips
(``pipeline.py``).
See https://centrifugal.dev/docs/server/engines#redis-engine and
https://centrifugal.dev/docs/server/history_and_recovery.

When a PUB/SUB connection breaks, whatever is published until it is back never arrives, and a
restarted Redis may have lost the streams. The broker names that connection's channels to
``handle_interrupted`` at once (on a channel without history nothing else could reveal the loss;
Centrifugo says nothing there), then, once they are subscribed again, reads their positions and hands
them to ``handle_resubscribed``, so positioned subscribers that missed something learn it at once
rather than from the next publication.

PUB/SUB messages share the channel's PUB/SUB name, told apart by their first byte:

- ``p`` + Publication (offset and epoch set when kept in history),
- ``d`` + varint length + previous Publication + Publication (delta compression asked for),
- ``j`` / ``l`` + ClientInfo (join / leave).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rotary.engines.base import (
    BrokerEventHandler,
    EngineError,
    HistoryQuery,
    HistoryResult,
    PublishOptions,
    PublishResult,
    StreamPosition,
    UnrecoverablePositionError,
    new_publication,
)
from rotary.engines.redis.history import select_range
from rotary.engines.redis.keys import KeySpace
from rotary.engines.redis.pubsub import Subscriber
from rotary.engines.redis.scripts import HISTORY, PUBLISH
from rotary.engines.redis.shards import RedisConfigLike, RedisOptions, RedisShard, ShardSet
from rotary.protocol import pb

__all__ = ["RedisBroker", "RedisBrokerOptions"]

log = logging.getLogger("rotary.engines.redis")

DEFAULT_IDEMPOTENT_RESULT_TTL = 300.0
"""Centrifugo remembers an idempotency key for 5 minutes when the publish names no TTL."""

_SUPPRESS_REASONS = {1: "idempotency", 2: "version"}
"""The publish script's third answer: why it dropped the publication (0: it did not)."""

PUBLICATION, DELTA, JOIN, LEAVE = b"p", b"d", b"j", b"l"

POSITION_ATTEMPTS = 5
POSITION_RETRY_DELAY = 0.2
"""Reading positions after a reconnect is tried again with this delay, doubling, when Redis fails."""


class RedisBrokerConfigLike(RedisConfigLike, Protocol):
    @property
    def history_use_lists(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RedisBrokerOptions:
    redis: RedisOptions = field(default_factory=RedisOptions)
    history_use_lists: bool = False
    history_meta_ttl: float = 0.0
    """Applies when a publish or history query names none; 0 keeps a stream's meta forever."""

    @classmethod
    def from_config(cls, config: RedisBrokerConfigLike, history_meta_ttl: float = 0.0) -> RedisBrokerOptions:
        return cls(RedisOptions.from_config(config), config.history_use_lists, history_meta_ttl)


def _new_epoch() -> str:
    return secrets.token_hex(4)


def _ms(seconds: float) -> int:
    """Redis TTLs in whole milliseconds; a positive TTL never rounds down to "no TTL"."""
    return max(int(seconds * 1000), 1) if seconds > 0 else 0


def _read_varint(data: bytes, start: int) -> tuple[int, int]:
    value, shift, index = 0, 0, start
    while True:
        byte = data[index]
        value |= (byte & 0x7F) << shift
        index += 1
        if byte < 0x80:
            return value, index
        shift += 7


class RedisBroker:
    """A Broker over one or more Redis shards; ``supports_history`` is always true."""

    supports_history = True

    def __init__(self, options: RedisBrokerOptions | None = None) -> None:
        self._options = options or RedisBrokerOptions()
        self._keys = KeySpace(self._options.redis.prefix)
        self._shards = ShardSet(self._options.redis)
        self._subscribers: dict[tuple[int, str], Subscriber] = {}
        self._channels: dict[bytes, str] = {}
        self._handler: BrokerEventHandler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._decoders: dict[int, Callable[[str, bytes], None]] = {
            PUBLICATION[0]: self._on_publication,
            DELTA[0]: self._on_delta,
            JOIN[0]: self._on_join,
            LEAVE[0]: self._on_leave,
        }

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        await self._shards.connect()

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        subscribers, self._subscribers = self._subscribers, {}
        for subscriber in subscribers.values():
            await subscriber.close()
        await self._shards.close()
        self._channels.clear()

    async def subscribe(self, channels: Sequence[str]) -> None:
        batches: dict[Subscriber, list[bytes]] = {}
        for channel in channels:
            number, shard = self._shard(channel)
            name = self._keys.pubsub(channel).encode()
            self._channels[name] = channel
            batches.setdefault(self._subscriber(number, shard.route(name)), []).append(name)
        await asyncio.gather(*(subscriber.subscribe(names) for subscriber, names in batches.items()))

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        for channel in channels:
            number, shard = self._shard(channel)
            name = self._keys.pubsub(channel).encode()
            subscriber = self._subscribers.get((number, shard.route(name)))
            if subscriber is not None:
                subscriber.unsubscribe([name])
            self._channels.pop(name, None)

    async def sync(self) -> None:
        """Returns once every message published before the call reached the handler.

        One ping per PUB/SUB connection: Redis answers it after the messages queued before it.
        """
        await asyncio.gather(*(subscriber.ping() for subscriber in self._subscribers.values()))

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        pub = new_publication(data, opts.client_info, opts.tags, opts.version)
        payload = pub.SerializeToString()
        keeps_history = opts.history_size > 0 and opts.history_ttl > 0
        if not keeps_history and not opts.idempotency_key:
            message = DELTA + b"\x00" + payload if opts.use_delta else PUBLICATION + payload
            await self._send(channel, message)
            return PublishResult(StreamPosition())
        return await self._publish_by_script(channel, payload, opts, keeps_history)

    async def publish_join(self, channel: str, info: pb.ClientInfo) -> None:
        await self._send(channel, JOIN + info.SerializeToString())

    async def publish_leave(self, channel: str, info: pb.ClientInfo) -> None:
        await self._send(channel, LEAVE + info.SerializeToString())

    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        _, shard = self._shard(channel)
        since = query.since
        lists = self._options.history_use_lists
        args = [
            _new_epoch(),
            _ms(query.meta_ttl or self._options.history_meta_ttl),
            query.limit,
            int(query.reverse),
            "" if since is None else since.offset,
            int(lists),
        ]
        keys = [self._keys.stream(channel), self._keys.meta(channel)]
        top, raw_epoch, entries = await shard.pipeline.script(channel, HISTORY, keys, args)
        position = StreamPosition(int(top), _text(raw_epoch))
        if since is not None and since.epoch not in ("", position.epoch):
            raise UnrecoverablePositionError(
                f"channel {channel!r}: stream epoch is {position.epoch!r}, position names {since.epoch!r}"
            )
        pubs = [pb.Publication.FromString(entry) for entry in entries]
        if lists:
            pubs.reverse()
            pubs = select_range(pubs, position.offset, query)
        return HistoryResult(pubs, position)

    async def remove_history(self, channel: str) -> None:
        _, shard = self._shard(channel)
        await shard.pipeline.command(channel, "DEL", self._keys.stream(channel))

    async def _publish_by_script(
        self, channel: str, payload: bytes, opts: PublishOptions, keeps_history: bool
    ) -> PublishResult:
        _, shard = self._shard(channel)
        result_ttl = (
            opts.idempotent_result_ttl if opts.idempotent_result_ttl > 0 else DEFAULT_IDEMPOTENT_RESULT_TTL
        )
        keys = [
            self._keys.stream(channel),
            self._keys.meta(channel),
            self._keys.result(channel, opts.idempotency_key),
        ]
        args = [
            payload,
            opts.history_size if keeps_history else 0,
            _ms(opts.history_ttl),
            _ms(opts.history_meta_ttl or self._options.history_meta_ttl),
            _new_epoch(),
            _ms(result_ttl) if opts.idempotency_key else 0,
            int(opts.use_delta),
            opts.version,
            opts.version_epoch,
            shard.publish_command,
            int(self._options.history_use_lists),
            self._keys.pubsub(channel),
        ]
        offset, epoch, suppressed = await shard.pipeline.script(channel, PUBLISH, keys, args)
        reason = _SUPPRESS_REASONS.get(int(suppressed), "")
        return PublishResult(
            StreamPosition(int(offset), _text(epoch)), suppressed=bool(reason), suppress_reason=reason
        )

    async def _send(self, channel: str, message: bytes) -> None:
        _, shard = self._shard(channel)
        await shard.pipeline.command(
            channel, shard.publish_command.upper(), self._keys.pubsub(channel), message
        )

    def _shard(self, channel: str) -> tuple[int, RedisShard]:
        return self._shards.for_channel(channel)

    def _subscriber(self, number: int, route: str) -> Subscriber:
        subscriber = self._subscribers.get((number, route))
        if subscriber is None:
            subscriber = Subscriber(self._shards.shards[number], route, self._deliver)
            subscriber.on_reconnect = functools.partial(self._resubscribed, subscriber)
            subscriber.on_interrupted = self._interrupted
            self._subscribers[(number, route)] = subscriber
            subscriber.start()
        return subscriber

    def _interrupted(self, names: list[bytes]) -> None:
        channels = [self._channels[name] for name in names if name in self._channels]
        if channels and self._handler is not None:
            self._handler.handle_interrupted(channels)

    def _resubscribed(self, subscriber: Subscriber, names: list[bytes]) -> None:
        channels = [self._channels[name] for name in names if name in self._channels]
        if channels and self._handler is not None:
            task = asyncio.get_running_loop().create_task(self._report_positions(subscriber, channels))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _report_positions(self, subscriber: Subscriber, channels: list[str]) -> None:
        """Hands the handler the positions of channels subscribed again, once they can be trusted.

        The first ping proves the subscriptions are live again, so whatever is published after the
        reads will arrive; the second lets every publication the reads counted arrive first, so a
        subscriber behind a position really missed something.
        """
        delay = POSITION_RETRY_DELAY
        for attempt in range(1, POSITION_ATTEMPTS + 1):
            try:
                await subscriber.ping()
                tops = await asyncio.gather(*(self._position(channel) for channel in channels))
                await subscriber.ping()
            except EngineError as exc:
                log.warning(
                    "redis: reading %d positions after a reconnect failed (%s), attempt %d",
                    len(channels),
                    exc,
                    attempt,
                )
                await asyncio.sleep(delay)
                delay *= 2
                continue
            assert self._handler is not None
            self._handler.handle_resubscribed(dict(zip(channels, tops, strict=True)))
            return
        log.error("redis: gave up reading the positions of %d channels after a reconnect", len(channels))

    async def _position(self, channel: str) -> StreamPosition:
        """The stream's position, without creating one: a stream whose meta is gone has (0, "")."""
        _, shard = self._shard(channel)
        epoch, top = await shard.pipeline.command(channel, "HMGET", self._keys.meta(channel), "e", "s")
        return StreamPosition(int(top or 0), "" if epoch is None else _text(epoch))

    def _deliver(self, name: bytes, message: bytes) -> None:
        channel = self._channels.get(name)
        decode = self._decoders.get(message[0]) if message else None
        if channel is not None and decode is not None and self._handler is not None:
            decode(channel, message)

    def _on_publication(self, channel: str, message: bytes) -> None:
        pub, position = _publication(message, 1)
        assert self._handler is not None
        self._handler.handle_publication(channel, pub, position, False, None)

    def _on_delta(self, channel: str, message: bytes) -> None:
        size, start = _read_varint(message, 1)
        prev = pb.Publication.FromString(message[start : start + size]) if size else None
        pub, position = _publication(message, start + size)
        assert self._handler is not None
        self._handler.handle_publication(channel, pub, position, True, prev)

    def _on_join(self, channel: str, message: bytes) -> None:
        assert self._handler is not None
        self._handler.handle_join(channel, pb.ClientInfo.FromString(message[1:]))

    def _on_leave(self, channel: str, message: bytes) -> None:
        assert self._handler is not None
        self._handler.handle_leave(channel, pb.ClientInfo.FromString(message[1:]))


def _publication(message: bytes, start: int) -> tuple[pb.Publication, StreamPosition]:
    """The Publication at ``start``; its epoch field travels only to give the position."""
    pub = pb.Publication.FromString(message[start:])
    position = StreamPosition(pub.offset, pub.epoch)
    if pub.epoch:
        pub.ClearField("epoch")
    return pub, position


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
