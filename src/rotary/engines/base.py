"""Contracts of the parts that keep publications, history and presence.

A Node talks to these protocols only; the memory engine is the reference implementation and the
test double, Redis and NATS implement the same contracts (one contract suite runs against all).
See https://centrifugal.dev/docs/server/engines and
https://centrifugal.dev/docs/server/history_and_recovery.

Why history lives inside Broker: assigning an offset, appending to the stream and sending to PUB/SUB
must be one atomic step per channel, or a subscriber recovering from history could miss or repeat a
publication. ``HistoryStore`` is the read side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rotary.protocol import pb


class EngineError(Exception):
    """The engine's backing service failed (network, timeout, server error).

    Client commands answer it with error 100 (temporary); the server API with 100 internal.
    """


class UnrecoverablePositionError(EngineError):
    """A history query named a ``since`` position whose epoch no longer matches the stream (112)."""


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a channel's stream stands: the offset of its newest publication and the stream's epoch.

    The epoch changes whenever the stream is lost (memory restart, Redis key expiry), which tells a
    recovering client that offsets from before are meaningless.
    """

    offset: int = 0
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """How one publication is kept. Zero history_size or history_ttl means: not kept in history."""

    history_size: int = 0
    history_ttl: float = 0.0
    history_meta_ttl: float = 0.0
    client_info: pb.ClientInfo | None = None
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
    idempotent_result_ttl: float = 300.0
    use_delta: bool = False
    version: int = 0
    version_epoch: str = ""


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The position the publication got; ``suppressed`` when an idempotency key or version dropped it."""

    position: StreamPosition
    suppressed: bool = False
    suppress_reason: str = ""
    """Why it was suppressed, as centrifuge names it: "idempotency" or "version"."""


def new_publication(
    data: bytes, info: pb.ClientInfo | None, tags: Mapping[str, str], version: int = 0
) -> pb.Publication:
    """The publication a broker sends (and keeps) for ``data``.

    Tags are copied only when there are some: upb fills a map field through
    ``MutableMapping.update``, which costs about 10k instructions even for an empty dict, a third
    of the memory broker's publish."""
    pub = pb.Publication(data=data, info=info, version=version)
    if tags:
        pub.tags.update(tags)
    return pub


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A read of a channel's stream.

    ``limit`` 0 asks for the position only, -1 for everything kept; ``since`` (exclusive) starts after
    that offset, and raises UnrecoverablePositionError when its epoch differs from the stream's.
    """

    since: StreamPosition | None = None
    limit: int = 0
    reverse: bool = False
    meta_ttl: float = 0.0


@dataclass(frozen=True, slots=True)
class HistoryResult:
    publications: list[pb.Publication]
    position: StreamPosition


@dataclass(frozen=True, slots=True)
class PresenceStats:
    """How many connections, and distinct users, are subscribed to a channel."""

    num_clients: int
    num_users: int


class BrokerEventHandler(Protocol):
    """What a broker calls when something arrives for a channel this node subscribed to.

    The methods are synchronous on purpose: fan-out to local connections never awaits, and a broker
    delivers one channel's events in order by calling them in order.
    """

    def handle_publication(
        self,
        channel: str,
        pub: pb.Publication,
        position: StreamPosition,
        delta: bool,
        prev: pb.Publication | None,
    ) -> None: ...

    def handle_join(self, channel: str, info: pb.ClientInfo) -> None: ...

    def handle_leave(self, channel: str, info: pb.ClientInfo) -> None: ...

    def handle_resubscribed(self, positions: Mapping[str, StreamPosition]) -> None:
        """The broker's subscription to these channels broke off and is live again.

        Publications sent in between were not delivered, and the stream may have started over (a
        restarted Redis). ``positions`` are the streams' current positions, read once the
        subscription was live again and handed over only after every publication they count has
        been delivered: a subscriber still behind one, or on another epoch, missed something. A
        stream that is gone has position (0, ""). Brokers that never lose a subscription (memory)
        never call it.
        """
        ...

    def handle_interrupted(self, channels: Sequence[str]) -> None:
        """The broker's connection broke: publications to these channels may be lost, from now
        until each is subscribed again, and no stream position will tell which (a broker without
        history, NATS). Called as soon as the loss is noticed, before anything arrives again, so a
        subscriber told now has missed nothing it was not told about.
        """
        ...


class HistoryStore(Protocol):
    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        """Publications with offsets in ascending order (descending when reversed) and the current position.

        A channel never published to has position (0, <a fresh epoch that stays stable>).
        """
        ...

    async def remove_history(self, channel: str) -> None:
        """Drops the kept publications; the position (offset and epoch) stays."""
        ...


class Broker(HistoryStore, Protocol):
    """PUB/SUB between nodes plus the per-channel history stream.

    ``publish`` is atomic per channel: offsets grow by one, and subscribers see publications in offset
    order. ``subscribe``/``unsubscribe`` only change which channels this node receives; they are
    idempotent and may be called with channels already in that state.
    """

    supports_history: bool

    async def start(self, handler: BrokerEventHandler) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, channels: Sequence[str]) -> None: ...

    async def unsubscribe(self, channels: Sequence[str]) -> None: ...

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult: ...

    async def publish_join(self, channel: str, info: pb.ClientInfo) -> None: ...

    async def publish_leave(self, channel: str, info: pb.ClientInfo) -> None: ...


class PresenceManager(Protocol):
    """Who is in a channel, keyed by client id. Entries of vanished nodes expire after a TTL."""

    async def presence(self, channel: str) -> dict[str, pb.ClientInfo]: ...

    async def presence_stats(self, channel: str) -> PresenceStats: ...

    async def add_presence(self, channel: str, client_id: str, info: pb.ClientInfo) -> None:
        """Adds or refreshes one entry (called again periodically to keep it alive)."""
        ...

    async def remove_presence(self, channel: str, client_id: str, user_id: str) -> None: ...

    async def close(self) -> None: ...


class Controller(Protocol):
    """Messages between the nodes of one cluster (disconnect a user everywhere, node stats, surveys).

    Delivery is at most once and unordered across nodes; a node's own broadcasts come back to it too
    (handlers skip what they sent). ``to_node`` addresses one node by its id; empty means every node.
    """

    node_id: str
    """The id of the node this controller serves; messages sent ``to_node`` it reach it."""

    async def start(self, handler: Callable[[bytes], None]) -> None:
        """Starts receiving messages for every node and for ``node_id``; handler is called synchronously."""
        ...

    async def publish_control(self, data: bytes, to_node: str = "") -> None: ...

    async def close(self) -> None: ...
