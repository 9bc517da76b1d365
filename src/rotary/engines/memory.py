"""The memory engine: a single-node broker with history, and a presence manager.

Everything lives in this process, so PUB/SUB is the set of channels this node subscribed to, and
a restart loses every stream (clients then see a new epoch and recover from their backend).
See https://centrifugal.dev/docs/server/engines#memory-engine,
https://centrifugal.dev/docs/server/history_and_recovery and
https://centrifugal.dev/docs/server/presence.

Time-to-live rules follow Centrifugo's memory engine:

- ``history_ttl`` keeps a channel's publications that long after its *latest* publication; then
  the stream's publications are dropped while its offset and epoch stay.
- ``history_meta_ttl`` keeps the stream itself (offset and epoch) that long after its latest
  publish or history read; then the channel starts over with a new epoch at offset 0.
- an idempotency key remembers its publish result for ``idempotent_result_ttl``.

Expiry is checked exactly whenever a channel is touched, and one periodic task sweeps what nobody
touches any more, so memory does not grow with abandoned channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import secrets
import string
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rotary.engines.base import (
    BrokerEventHandler,
    HistoryQuery,
    HistoryResult,
    PresenceStats,
    PublishOptions,
    PublishResult,
    StreamPosition,
    UnrecoverablePositionError,
    new_publication,
)
from rotary.protocol import pb

__all__ = ["Clock", "MemoryBroker", "MemoryPresenceManager"]

Clock = Callable[[], float]
"""Seconds on a clock that never goes back; ``time.monotonic`` unless a test moves time itself."""

DEFAULT_IDEMPOTENT_RESULT_TTL = 300.0
"""Centrifugo remembers an idempotency key for 5 minutes when the publish names no TTL."""

NO_POSITION = StreamPosition()
"""The position of a publication kept in no history: one shared (frozen) instance."""
_EPOCH_ALPHABET = string.ascii_letters
_EPOCH_LENGTH = 8

K = TypeVar("K", bound=Hashable)


def _new_epoch() -> str:
    return "".join(secrets.choice(_EPOCH_ALPHABET) for _ in range(_EPOCH_LENGTH))


class _Deadlines(Generic[K]):
    """Keys that lapse at a deadline: exact answers on access, cheap batch collection for a sweep.

    Extending a deadline (the common case: every publish pushes a channel's TTL forward) only
    updates the dict; the heap keeps about one entry per key, and the sweep re-queues a key whose
    deadline moved past the entry it popped. A sequence number breaks ties so keys are never
    compared.
    """

    def __init__(self) -> None:
        self._at: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()

    def set(self, key: K, at: float) -> None:
        current = self._at.get(key)
        self._at[key] = at
        if current is None or at < current:
            heapq.heappush(self._heap, (at, next(self._seq), key))

    def lapsed(self, key: K, now: float) -> bool:
        at = self._at.get(key)
        return at is not None and at <= now

    def discard(self, key: K) -> None:
        self._at.pop(key, None)

    def pop_lapsed(self, now: float) -> list[K]:
        """Forgets and returns every key whose deadline has passed."""
        lapsed: list[K] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, key = heapq.heappop(self._heap)
            at = self._at.get(key)
            if at is None:
                continue
            if at <= now:
                del self._at[key]
                lapsed.append(key)
            else:
                heapq.heappush(self._heap, (at, next(self._seq), key))
        self._compact()
        return lapsed

    def _compact(self) -> None:
        """Discarded keys and deadlines moved earlier leave stale heap entries; rebuild when they pile up."""
        if len(self._heap) > 2 * len(self._at) + 100:
            self._heap = [(at, next(self._seq), key) for key, at in self._at.items()]
            heapq.heapify(self._heap)


@dataclass(slots=True, eq=False)
class _Stream:
    """One channel's stream. The kept publications have consecutive offsets ending at ``top``."""

    epoch: str
    top: int = 0
    pubs: deque[pb.Publication] = field(default_factory=deque)
    version: int = 0
    version_epoch: str = ""

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(self.top, self.epoch)

    def last(self) -> pb.Publication | None:
        return self.pubs[-1] if self.pubs else None

    def outdates(self, version: int, version_epoch: str) -> bool:
        """Whether a publish with this version is older than the stream's latest one.

        An empty version epoch compares with any: versioned publishing only restarts its numbering
        when the publisher names a new epoch.
        """
        same_epoch = version_epoch in ("", self.version_epoch)
        return version > 0 and same_epoch and version <= self.version

    def append(self, pub: pb.Publication, size: int, version: int, version_epoch: str) -> None:
        self.top += 1
        pub.offset = self.top
        self.pubs.append(pub)
        while len(self.pubs) > size:
            self.pubs.popleft()
        self.version, self.version_epoch = version, version_epoch

    def read(self, query: HistoryQuery) -> list[pb.Publication]:
        if query.limit == 0 or not self.pubs:
            return []
        count = len(self.pubs) if query.limit < 0 else query.limit
        first_offset = self.top - len(self.pubs) + 1
        if query.reverse:
            return self._read_backward(first_offset, count, query.since)
        return self._read_forward(first_offset, count, query.since)

    def _read_forward(
        self, first_offset: int, count: int, since: StreamPosition | None
    ) -> list[pb.Publication]:
        # Publications trimmed away are skipped: the reader sees the gap in the offsets and
        # decides (recovery refuses to be partial).
        start = 0 if since is None else max(since.offset + 1 - first_offset, 0)
        return list(itertools.islice(self.pubs, start, start + count))

    def _read_backward(
        self, first_offset: int, count: int, since: StreamPosition | None
    ) -> list[pb.Publication]:
        end = len(self.pubs) if since is None else since.offset - first_offset
        if not 0 < end <= len(self.pubs):
            return []
        chunk = list(itertools.islice(self.pubs, max(end - count, 0), end))
        chunk.reverse()
        return chunk


class MemoryBroker:
    """The reference Broker: per-channel streams in a dict, delivery by direct call.

    ``publish`` has no ``await`` inside: offset assignment, the history append and the handler
    call happen in one step, so a single event loop gives per-channel order without locks. The
    publication handed to the handler is the one kept in history; neither side may change it.
    """

    supports_history = True

    def __init__(
        self, *, history_meta_ttl: float = 0.0, sweep_interval: float = 1.0, clock: Clock = time.monotonic
    ) -> None:
        """``history_meta_ttl`` applies when a publish or history query names none; 0 keeps meta forever."""
        self._history_meta_ttl = history_meta_ttl
        self._sweep_interval = sweep_interval
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        self._data_expiry: _Deadlines[str] = _Deadlines()
        self._meta_expiry: _Deadlines[str] = _Deadlines()
        self._results: dict[tuple[str, str], StreamPosition] = {}
        self._result_expiry: _Deadlines[tuple[str, str]] = _Deadlines()
        self._subscribed: set[str] = set()
        self._handler: BrokerEventHandler | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_periodically(), name="rotary.memory-broker-sweep")

    async def close(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    async def subscribe(self, channels: Sequence[str]) -> None:
        self._subscribed.update(channels)

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        self._subscribed.difference_update(channels)

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        now = self._clock()
        cached = self._cached_result(channel, opts.idempotency_key, now)
        if cached is not None:
            return PublishResult(cached, suppressed=True, suppress_reason="idempotency")
        pub = new_publication(data, opts.client_info, opts.tags, opts.version)
        prev: pb.Publication | None = None
        position = NO_POSITION
        # Centrifugo: history needs both a size and a TTL; without it there are no offsets.
        if opts.history_size > 0 and opts.history_ttl > 0:
            stream = self._touch_stream(channel, now, opts.history_meta_ttl)
            if stream.outdates(opts.version, opts.version_epoch):
                return PublishResult(stream.position, suppressed=True, suppress_reason="version")
            prev = stream.last() if opts.use_delta else None
            stream.append(pub, opts.history_size, opts.version, opts.version_epoch)
            self._data_expiry.set(channel, now + opts.history_ttl)
            position = stream.position
            if pub.offset == 1:
                pub.epoch = position.epoch  # kept in history too, as Centrifugo's memory engine does
        self._remember_result(channel, opts, position, now)
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_publication(channel, pub, position, opts.use_delta, prev)
        return PublishResult(position)

    async def publish_join(self, channel: str, info: pb.ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_join(channel, info)

    async def publish_leave(self, channel: str, info: pb.ClientInfo) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.handle_leave(channel, info)

    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        stream = self._touch_stream(channel, self._clock(), query.meta_ttl)
        since = query.since
        # An empty epoch in `since` means the reader does not know it, and accepts any stream.
        if since is not None and since.epoch not in ("", stream.epoch):
            raise UnrecoverablePositionError(
                f"channel {channel!r}: stream epoch is {stream.epoch!r}, position names {since.epoch!r}"
            )
        return HistoryResult(stream.read(query), stream.position)

    async def remove_history(self, channel: str) -> None:
        self._expire(channel, self._clock())
        stream = self._streams.get(channel)
        if stream is not None:
            stream.pubs.clear()
            self._data_expiry.discard(channel)

    def sweep(self) -> int:
        """Drops whatever has expired and nobody touched since; returns how many entries went.

        The periodic task calls it; it is public so an embedding application (or a test) can run
        it on its own schedule.
        """
        now = self._clock()
        removed = self._meta_expiry.pop_lapsed(now)
        for channel in removed:
            self._streams.pop(channel, None)
            self._data_expiry.discard(channel)
        cleared = self._data_expiry.pop_lapsed(now)
        for channel in cleared:
            self._streams[channel].pubs.clear()
        forgotten = self._result_expiry.pop_lapsed(now)
        for key in forgotten:
            del self._results[key]
        return len(removed) + len(cleared) + len(forgotten)

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            self.sweep()

    def _expire(self, channel: str, now: float) -> None:
        if self._meta_expiry.lapsed(channel, now):
            self._streams.pop(channel, None)
            self._meta_expiry.discard(channel)
            self._data_expiry.discard(channel)
        elif self._data_expiry.lapsed(channel, now):
            self._streams[channel].pubs.clear()
            self._data_expiry.discard(channel)

    def _touch_stream(self, channel: str, now: float, meta_ttl: float) -> _Stream:
        """The channel's live stream, created with a fresh epoch if missing; extends its meta life."""
        self._expire(channel, now)
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(_new_epoch())
        ttl = meta_ttl or self._history_meta_ttl
        if ttl > 0:
            self._meta_expiry.set(channel, now + ttl)
        return stream

    def _cached_result(self, channel: str, idempotency_key: str, now: float) -> StreamPosition | None:
        if not idempotency_key:
            return None
        key = (channel, idempotency_key)
        if self._result_expiry.lapsed(key, now):
            self._result_expiry.discard(key)
            del self._results[key]
        return self._results.get(key)

    def _remember_result(
        self, channel: str, opts: PublishOptions, position: StreamPosition, now: float
    ) -> None:
        if not opts.idempotency_key:
            return
        key = (channel, opts.idempotency_key)
        ttl = opts.idempotent_result_ttl if opts.idempotent_result_ttl > 0 else DEFAULT_IDEMPOTENT_RESULT_TTL
        self._results[key] = position
        self._result_expiry.set(key, now + ttl)


class MemoryPresenceManager:
    """Presence in a dict: channel -> client id -> ClientInfo.

    Entries never expire here: on a single node, a client's entry goes when the client goes.
    ``num_users`` counts distinct user ids, and all anonymous clients (user "") count as one user,
    as in Centrifugo.
    """

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, pb.ClientInfo]] = {}

    async def presence(self, channel: str) -> dict[str, pb.ClientInfo]:
        return dict(self._channels.get(channel, {}))

    async def presence_stats(self, channel: str) -> PresenceStats:
        clients = self._channels.get(channel, {})
        users = {info.user for info in clients.values()}
        return PresenceStats(num_clients=len(clients), num_users=len(users))

    async def add_presence(self, channel: str, client_id: str, info: pb.ClientInfo) -> None:
        self._channels.setdefault(channel, {})[client_id] = info

    async def remove_presence(self, channel: str, client_id: str, user_id: str) -> None:
        clients = self._channels.get(channel)
        if clients is None:
            return
        clients.pop(client_id, None)
        if not clients:
            del self._channels[channel]

    async def close(self) -> None:
        """Nothing to release: the dicts go with the process."""
