"""One subscription's state inside a session, its life cycle, and the hot-path check for each publication.

A subscription is *subscribing* from the moment the node starts serving it until the subscribe
reply is written; publications that arrive in between are buffered so the recovery merge can place
them after the history it read. It is *subscribed* from then on, and *ended* once, by whichever
comes first: an unsubscribe (the client's or the server's), expiry, insufficient state, or the
close of its connection. The allowed moves are the table TRANSITIONS; every move goes through
`ChannelState._move`, so a subscription can neither start twice nor come back after its end.
See https://centrifugal.dev/docs/server/history_and_recovery.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rotary.protocol import codes, pb
from rotary.protocol.tags_filter import TagsMatcher


class SubscriptionStatus(enum.Enum):
    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    ENDED = "ended"


TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    SubscriptionStatus.SUBSCRIBING: frozenset({SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.ENDED}),
    SubscriptionStatus.SUBSCRIBED: frozenset({SubscriptionStatus.ENDED}),
    SubscriptionStatus.ENDED: frozenset(),
}
"""The moves a subscription may make; anything else is a bug in its owner (node/subscription.py)."""


class InvalidTransition(RuntimeError):
    """A subscription was asked to move where TRANSITIONS does not allow."""


class Verdict(enum.Enum):
    DELIVER = "deliver"
    BUFFER = "buffer"
    SKIP = "skip"
    """Already delivered (through recovery): a duplicate."""
    GAP = "gap"
    """A publication is missing before this one: the subscriber's state is insufficient."""


# Members bound once for accept(), which runs per subscriber and publication, and the moves: on
# Python 3.11 an Enum class attribute goes through EnumType.__getattr__ (about 850 instructions each).
_SUBSCRIBING = SubscriptionStatus.SUBSCRIBING
_SUBSCRIBED = SubscriptionStatus.SUBSCRIBED
_ENDED = SubscriptionStatus.ENDED
_DELIVER = Verdict.DELIVER
_BUFFER = Verdict.BUFFER
_SKIP = Verdict.SKIP
_GAP = Verdict.GAP


@dataclass(slots=True)
class ChannelState:
    """Per-connection facts about one channel the connection is subscribed to.

    The fields a subscription starts with come first, in the order node/subscription.py passes
    them positionally (a class called with keywords gets them as a dict first, on every subscribe)."""

    channel: str
    server_side: bool = False
    positioned: bool = False
    """Offsets are tracked: a gap in them means lost publications."""
    push_join_leave: bool = False
    emit_presence: bool = False
    emit_join_leave: bool = False
    expire_at: int = 0
    chan_info: bytes = b""
    delta: str = ""
    """Negotiated delta type ("fossil"), empty for none; part of the subscriber's encoding key."""
    tags_filter: TagsMatcher | None = None
    """Publications whose tags it rejects are not delivered (offsets still advance). A delta
    subscription keeps it for recovery only: live, Centrifugo sends it every publication."""
    server_side_refresh: bool = False
    """The server refreshes it at expiry; the client may not send sub_refresh for it."""
    status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBING
    offset: int = 0
    epoch: str = ""
    buffered: list[tuple[pb.Publication, int, str]] = field(default_factory=list)
    """Publications (with their offsets and epochs) received while subscribing."""
    delta_ready: bool = False
    """The subscriber holds a whole publication it can apply the next delta to."""
    end_requested: codes.UnsubscribeCode | None = None
    """The server asked to end it while it was still subscribing: it ends right after it goes live,
    as centrifuge waits for a subscribe in progress before unsubscribing."""

    def wants(self, pub: pb.Publication) -> bool:
        """Whether the tags filter, if any, lets ``pub`` through."""
        return self.tags_filter is None or self.tags_filter(pub.tags)

    # -- life cycle ----------------------------------------------------------------------------

    def _move(self, to: SubscriptionStatus) -> None:
        if to not in TRANSITIONS[self.status]:
            raise InvalidTransition(f"subscription to {self.channel!r}: {self.status.value} -> {to.value}")
        self.status = to

    def buffer(self, pub: pb.Publication, offset: int, epoch: str) -> None:
        """Keeps a publication that arrived while subscribing (after a BUFFER verdict)."""
        self.buffered.append((pub, offset, epoch))

    def take_buffered(self) -> list[tuple[pb.Publication, int, str]]:
        """The publications buffered while subscribing, handed over once for the recovery merge."""
        buffered, self.buffered = self.buffered, []
        return buffered

    def mark_delta_base(self) -> None:
        """The subscriber now holds a whole publication: the next may go as a delta."""
        self.delta_ready = True

    def activate(self, epoch: str, offset: int, delta_ready: bool) -> None:
        """The subscribe reply (or push) was queued: live from now on, at this stream position."""
        self._move(_SUBSCRIBED)
        self.epoch = epoch
        self.offset = offset
        self.delta_ready = delta_ready

    def refresh(self, expire_at: int, chan_info: bytes | None) -> None:
        self.expire_at = expire_at
        if chan_info is not None:
            self.chan_info = chan_info

    def end(self) -> bool:
        """Ends the subscription; True when it had been live (so its join was announced)."""
        was_live = self.status is _SUBSCRIBED
        self._move(_ENDED)
        self.buffered = []
        return was_live

    @property
    def live(self) -> bool:
        return self.status is _SUBSCRIBED

    def accept(self, offset: int, epoch: str = "") -> Verdict:
        """Decides what to do with a publication of this offset and epoch; advances the tracked offset.

        Another epoch than the subscriber's means the stream started over (its storage lost it, as
        a restarted Redis does), so offsets no longer compare: the subscriber's state is insufficient
        and it must resubscribe, where recovery tells it the truth. A subscriber that got no epoch
        (the stream did not exist yet) adopts the first one it sees.
        """
        status = self.status
        if status is not _SUBSCRIBED:
            return _BUFFER if status is _SUBSCRIBING else _SKIP
        if not self.positioned or offset == 0:
            return _DELIVER
        if epoch and epoch != self.epoch:
            if self.epoch:
                return _GAP
            self.epoch = epoch
        if offset <= self.offset:
            return _SKIP
        if offset != self.offset + 1:
            return _GAP
        self.offset = offset
        return _DELIVER
