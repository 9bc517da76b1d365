"""One subscription's state inside a session, and the hot-path check for each publication.

A subscription is *subscribing* from the moment the node starts serving it until the subscribe
reply is written; publications that arrive in between are buffered so the recovery merge can place
them after the history it read. See https://centrifugal.dev/docs/server/history_and_recovery.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rotary.protocol import pb
from rotary.protocol.tags_filter import TagsMatcher


class SubscriptionStatus(enum.Enum):
    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"


class Verdict(enum.Enum):
    DELIVER = "deliver"
    BUFFER = "buffer"
    SKIP = "skip"
    """Already delivered (through recovery): a duplicate."""
    GAP = "gap"
    """A publication is missing before this one: the subscriber's state is insufficient."""


@dataclass(slots=True)
class ChannelState:
    """Per-connection facts about one channel the connection is subscribed to."""

    channel: str
    server_side: bool = False
    status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBING
    positioned: bool = False
    """Offsets are tracked: a gap in them means lost publications."""
    offset: int = 0
    epoch: str = ""
    push_join_leave: bool = False
    emit_presence: bool = False
    emit_join_leave: bool = False
    expire_at: int = 0
    chan_info: bytes = b""
    buffered: list[tuple[pb.Publication, int]] = field(default_factory=list)
    """Publications (with their offsets) received while subscribing."""
    delta: str = ""
    """Negotiated delta type ("fossil"), empty for none; part of the subscriber's encoding key."""
    delta_ready: bool = False
    """The subscriber holds a whole publication it can apply the next delta to."""
    tags_filter: TagsMatcher | None = None
    """Publications whose tags it rejects are not delivered (offsets still advance)."""

    def wants(self, pub: pb.Publication) -> bool:
        """Whether the tags filter, if any, lets ``pub`` through."""
        return self.tags_filter is None or self.tags_filter(pub.tags)

    def accept(self, offset: int, epoch: str = "") -> Verdict:
        """Decides what to do with a publication of this offset and epoch; advances the tracked offset.

        Another epoch than the subscriber's means the stream started over (its storage lost it, as
        a restarted Redis does), so offsets no longer compare: the subscriber's state is insufficient
        and it must resubscribe, where recovery tells it the truth. A subscriber that got no epoch
        (the stream did not exist yet) adopts the first one it sees.
        """
        if self.status is SubscriptionStatus.SUBSCRIBING:
            return Verdict.BUFFER
        if not self.positioned or offset == 0:
            return Verdict.DELIVER
        if epoch and epoch != self.epoch:
            if self.epoch:
                return Verdict.GAP
            self.epoch = epoch
        if offset <= self.offset:
            return Verdict.SKIP
        if offset != self.offset + 1:
            return Verdict.GAP
        self.offset = offset
        return Verdict.DELIVER
