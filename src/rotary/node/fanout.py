"""Writing publications to the subscribers of one channel: encode once per group, write prepared bytes.

The hub collects the publications of a channel that arrive during one event-loop pass (an API batch,
a burst read from Redis) and hands them here together. A subscriber then gets all of them in one
frame, several messages batched as the client protocol allows, which costs one write() instead of
one per publication; the frame of a group is built once and shared. Publications of a delta group
and lone publications take the simpler one-frame-per-publication path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rotary.protocol import fossil, pb, prepared
from rotary.protocol.codec import codec_for
from rotary.protocol.codes import DISCONNECT_SLOW
from rotary.session.channels import ChannelState, SubscriptionStatus, Verdict

if TYPE_CHECKING:
    from rotary.node.client import Client
    from rotary.node.hub import EncodingKey, Subscriber

log = logging.getLogger("rotary.fanout")

# Enum members bound once: on Python 3.11 ``SubscriptionStatus.SUBSCRIBED`` goes through
# EnumType.__getattr__ (about 850 instructions, a tenth of a whole delivery), per subscriber.
_SUBSCRIBED = SubscriptionStatus.SUBSCRIBED
_DELIVER = Verdict.DELIVER
_BUFFER = Verdict.BUFFER
_GAP = Verdict.GAP

Troubles = list[Callable[[], None]]
"""Follow-up actions (closing slow clients, resyncing gaps) run after the walk over subscribers."""

Sent = tuple[int, int, int]
"""Publication messages written to a group, their bytes (encoded, before transport framing) and the
publications its subscribers' tags filters dropped, for metrics. Counted per group: the plain path
only counts the subscribers it skips."""


@dataclass(slots=True)
class Item:
    """One publication waiting for delivery in the current loop pass."""

    pub: pb.Publication
    offset: int
    epoch: str
    prev: pb.Publication | None


class Patch:
    """The fossil delta between two publications' data, computed on first use and only once."""

    __slots__ = ("_prev", "_pub", "_value")

    def __init__(self, prev: pb.Publication, pub: pb.Publication) -> None:
        self._prev = prev
        self._pub = pub
        self._value: bytes | None = None

    def value(self) -> bytes:
        if self._value is None:
            self._value = fossil.create(self._prev.data, self._pub.data)
        return self._value


def deliver(
    channel: str,
    items: list[Item],
    key: EncodingKey,
    group: dict[str, Subscriber],
    limit: int,
    troubles: Troubles,
) -> Sent:
    if key[3]:
        count = size = filtered = 0
        for item in items:
            patch = Patch(item.prev, item.pub) if item.prev is not None else None
            sent = _fan_out_delta(channel, item, key, group, patch, limit, troubles)
            count, size, filtered = count + sent[0], size + sent[1], filtered + sent[2]
        return count, size, filtered
    if len(items) == 1:
        return _fan_out_one(channel, items[0], key, group, limit, troubles)
    return _fan_out_many(channel, items, key, group, limit, troubles)


def _plain(state: ChannelState) -> bool:
    """Every publication goes to this subscriber unchecked (no position, no filter). The hot loop of
    :func:`_fan_out_one` spells the same test inline."""
    return state.status is _SUBSCRIBED and not state.positioned and state.tags_filter is None


def _admit(state: ChannelState, item: Item, channel: str, sub: Subscriber, troubles: Troubles) -> bool | None:
    """Whether ``item`` is next in this subscriber's stream (its tags filter aside); None when its
    state broke and nothing more may go."""
    verdict = state.accept(item.offset, item.epoch)
    if verdict is _DELIVER:
        return True
    if verdict is _BUFFER:
        state.buffer(item.pub, item.offset, item.epoch)
    elif verdict is _GAP:
        troubles.append(resync(sub, channel))
        return None
    return False


def _filtered(state: ChannelState, item: Item) -> bool:
    """Whether the subscriber's tags filter drops ``item``. Centrifugo counts each such drop for
    every subscriber of the channel, before any position check, so the callers ask first."""
    return state.tags_filter is not None and not state.tags_filter(item.pub.tags)


def _write(sub: Subscriber, frame: bytes, limit: int, troubles: Troubles) -> None:
    if sub.transport.write_prepared(frame) > limit and limit:
        troubles.append(_slow(sub.client))


def _slow(client: Client) -> Callable[[], None]:
    """The follow-up for a subscriber whose unsent bytes passed the limit: 3008."""
    return lambda: client.close(DISCONNECT_SLOW)


def resync(sub: Subscriber, channel: str) -> Callable[[], None]:
    """The follow-up for a subscriber that may have missed a publication: 2500, or 3010 server-side."""
    client = sub.client
    return lambda: client.insufficient_state(channel)


def _failed(sub: Subscriber, channel: str, troubles: Troubles) -> None:
    """One subscriber's failure (a filter, a transport) ends its subscription with 2500 / 3010;
    everyone else in the group still gets the frame."""
    client = sub.client.id
    log.exception(
        "delivery to client %s on channel %r failed",
        client,
        channel,
        extra={"client": client, "channel": channel},
    )
    troubles.append(resync(sub, channel))


def _fan_out_one(
    channel: str, item: Item, key: EncodingKey, group: dict[str, Subscriber], limit: int, troubles: Troubles
) -> Sent:
    """The hot loop: one verdict, one filter check and one write per subscriber.

    It spells out :func:`_plain` and :func:`_write` inline, two Python calls fewer per delivery
    (bench/fanout_ir.py counts the instructions)."""
    frame: bytes | None = None
    payload = b""
    skipped = filtered = 0
    for sub in group.values():
        state = sub.state
        try:
            if state.status is not _SUBSCRIBED or state.positioned or state.tags_filter is not None:
                dropped = _filtered(state, item)
                filtered += dropped
                if not _admit(state, item, channel, sub, troubles) or dropped:
                    skipped += 1
                    continue
            if frame is None:
                payload = prepared.publication_push(channel, item.pub, key[0], key[1])
                frame = sub.transport.frame(payload)
            if sub.transport.write_prepared(frame) > limit and limit:
                troubles.append(_slow(sub.client))
        except Exception:  # noqa: BLE001 - isolation: _failed logs it and tells the subscriber
            skipped += 1
            _failed(sub, channel, troubles)
    count = len(group) - skipped
    return count, count * len(payload), filtered


def _fan_out_many(
    channel: str,
    items: list[Item],
    key: EncodingKey,
    group: dict[str, Subscriber],
    limit: int,
    troubles: Troubles,
) -> Sent:
    """Several publications: one frame with all of them for every subscriber that takes them all."""
    codec = codec_for(key[0])
    payloads: list[bytes | None] = [None] * len(items)
    everything = list(range(len(items)))
    whole: bytes | None = None
    partial = 0  # subscribers that did not get the whole frame
    count = size = 0  # what those got
    filtered = [0]

    def payload(i: int) -> bytes:
        found = payloads[i]
        if found is None:
            found = payloads[i] = prepared.publication_push(channel, items[i].pub, key[0], key[1])
        return found

    for sub in group.values():
        state = sub.state
        try:
            chosen = everything if _plain(state) else _chosen(state, items, channel, sub, troubles, filtered)
            if len(chosen) == len(items):
                if whole is None:
                    whole = sub.transport.frame(codec.join([payload(i) for i in everything]))
                _write(sub, whole, limit, troubles)
                continue
            partial += 1
            if not chosen:
                continue
            _write(sub, sub.transport.frame(codec.join([payload(i) for i in chosen])), limit, troubles)
            count += len(chosen)
            size += sum(len(payload(i)) for i in chosen)
        except Exception:  # noqa: BLE001 - isolation: _failed logs it and tells the subscriber
            partial += 1
            _failed(sub, channel, troubles)
    wholes = len(group) - partial
    if wholes and whole is not None:
        count += wholes * len(items)
        size += wholes * sum(len(payload(i)) for i in everything)
    return count, size, filtered[0]


def _chosen(
    state: ChannelState,
    items: list[Item],
    channel: str,
    sub: Subscriber,
    troubles: Troubles,
    filtered: list[int],
) -> list[int]:
    """The items this subscriber takes; ``filtered[0]`` grows by those its tags filter drops."""
    chosen: list[int] = []
    for i, item in enumerate(items):
        dropped = _filtered(state, item)
        filtered[0] += dropped
        admitted = _admit(state, item, channel, sub, troubles)
        if admitted is None:
            break
        if admitted and not dropped:
            chosen.append(i)
    return chosen


def _fan_out_delta(
    channel: str,
    item: Item,
    key: EncodingKey,
    group: dict[str, Subscriber],
    patch: Patch | None,
    limit: int,
    troubles: Troubles,
) -> Sent:
    """A delta group: a subscriber gets the delta frame once it holds a base.

    A delta subscriber gets every publication (the chain of deltas needs them all, and Centrifugo
    sends them all too), so tags filters do not apply here; they do apply to its recovery. Centrifugo
    still counts the publications they would drop, and so does this.
    """
    frames: dict[bool, bytes] = {}
    sizes: dict[bool, int] = {}
    count = size = filtered = 0
    for sub in group.values():
        state = sub.state
        try:
            filtered += _filtered(state, item)
            verdict = state.accept(item.offset, item.epoch)
            if verdict is _DELIVER:
                as_delta = state.delta_ready and patch is not None
                frame = frames.get(as_delta)
                if frame is None:
                    base_patch = patch.value() if as_delta and patch is not None else None
                    data = prepared.delta_publication_push(channel, item.pub, base_patch, key[0], key[1])
                    frame = frames[as_delta] = sub.transport.frame(data)
                    sizes[as_delta] = len(data)
                state.mark_delta_base()
                _write(sub, frame, limit, troubles)
                count, size = count + 1, size + sizes[as_delta]
            elif verdict is _BUFFER:
                state.buffer(item.pub, item.offset, item.epoch)
            elif verdict is _GAP:
                troubles.append(resync(sub, channel))
        except Exception:  # noqa: BLE001 - isolation: _failed logs it and tells the subscriber
            _failed(sub, channel, troubles)
    return count, size, filtered
