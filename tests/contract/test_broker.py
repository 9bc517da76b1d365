"""The Broker contract: history streams, publish options and delivery to the event handler.

Every test runs once per implementation registered in ``conftest.BROKERS``; tests marked
``history`` are skipped for brokers without history. The memory engine's own details (delivery
inside ``publish``, the sweep) are at the end.
See https://centrifugal.dev/docs/server/history_and_recovery and
https://centrifugal.dev/docs/server/engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rotary.engines.base import (
    Broker,
    HistoryQuery,
    PublishOptions,
    PublishResult,
    StreamPosition,
    UnrecoverablePositionError,
)
from rotary.engines.memory import MemoryBroker
from rotary.protocol import pb

from .conftest import BrokerRig, FakeClock, JoinEvent, LeaveEvent, RecordingHandler

KEPT = PublishOptions(history_size=10, history_ttl=60.0)
ALL = HistoryQuery(limit=-1)

history = pytest.mark.history


async def publish_many(
    broker: Broker, channel: str, count: int, opts: PublishOptions = KEPT
) -> list[PublishResult]:
    return [await broker.publish(channel, b'{"n":%d}' % n, opts) for n in range(1, count + 1)]


async def offsets(broker: Broker, channel: str, query: HistoryQuery = ALL) -> list[int]:
    result = await broker.history(channel, query)
    return [pub.offset for pub in result.publications]


def since(offset: int, epoch: str = "") -> StreamPosition:
    return StreamPosition(offset, epoch)


# Offsets and epoch


@history
async def test_offsets_grow_by_one_within_one_epoch(broker: Broker) -> None:
    results = await publish_many(broker, "chat", 3)

    assert [r.position.offset for r in results] == [1, 2, 3]
    assert len({r.position.epoch for r in results}) == 1
    assert results[0].position.epoch != ""
    assert not any(r.suppressed for r in results)


@history
async def test_history_returns_publications_with_the_stream_position(broker: Broker) -> None:
    results = await publish_many(broker, "chat", 3)

    history_result = await broker.history("chat", ALL)

    assert [pub.offset for pub in history_result.publications] == [1, 2, 3]
    assert [pub.data for pub in history_result.publications] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert history_result.position == results[-1].position


@history
async def test_unknown_channel_has_offset_zero_and_an_epoch_its_first_publish_keeps(broker: Broker) -> None:
    first = await broker.history("fresh", HistoryQuery())
    again = await broker.history("fresh", HistoryQuery())
    published = await broker.publish("fresh", b"{}", KEPT)

    assert first.publications == []
    assert first.position.offset == 0
    assert first.position.epoch != ""
    assert again.position == first.position
    assert published.position == StreamPosition(1, first.position.epoch)


@history
async def test_channels_have_their_own_streams(broker: Broker) -> None:
    await publish_many(broker, "a", 2)
    await publish_many(broker, "b", 1)

    assert await offsets(broker, "a") == [1, 2]
    assert await offsets(broker, "b") == [1]


# History queries


@history
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (HistoryQuery(limit=-1), [1, 2, 3, 4, 5]),
        (HistoryQuery(limit=0), []),
        (HistoryQuery(limit=2), [1, 2]),
        (HistoryQuery(limit=9), [1, 2, 3, 4, 5]),
        (HistoryQuery(limit=2, reverse=True), [5, 4]),
        (HistoryQuery(limit=-1, reverse=True), [5, 4, 3, 2, 1]),
        (HistoryQuery(since=since(2), limit=-1), [3, 4, 5]),
        (HistoryQuery(since=since(2), limit=1), [3]),
        (HistoryQuery(since=since(2), limit=0), []),
        (HistoryQuery(since=since(0), limit=-1), [1, 2, 3, 4, 5]),
        (HistoryQuery(since=since(5), limit=-1), []),
        (HistoryQuery(since=since(9), limit=-1), []),
        (HistoryQuery(since=since(4), limit=2, reverse=True), [3, 2]),
        (HistoryQuery(since=since(4), limit=-1, reverse=True), [3, 2, 1]),
        (HistoryQuery(since=since(6), limit=-1, reverse=True), [5, 4, 3, 2, 1]),
        (HistoryQuery(since=since(1), limit=-1, reverse=True), []),
    ],
)
async def test_history_query(broker: Broker, query: HistoryQuery, expected: list[int]) -> None:
    await publish_many(broker, "chat", 5)

    result = await broker.history("chat", query)

    assert [pub.offset for pub in result.publications] == expected
    assert result.position.offset == 5


@history
async def test_since_with_the_current_epoch_is_accepted(broker: Broker) -> None:
    results = await publish_many(broker, "chat", 3)
    epoch = results[0].position.epoch

    assert await offsets(broker, "chat", HistoryQuery(since=since(1, epoch), limit=-1)) == [2, 3]


@history
async def test_since_with_another_epoch_is_unrecoverable(broker: Broker) -> None:
    await publish_many(broker, "chat", 3)

    with pytest.raises(UnrecoverablePositionError):
        await broker.history("chat", HistoryQuery(since=since(1, "other"), limit=-1))


# Keeping and dropping history


@history
async def test_history_size_keeps_the_newest_publications(broker: Broker) -> None:
    await publish_many(broker, "chat", 5, PublishOptions(history_size=3, history_ttl=60.0))

    assert await offsets(broker, "chat") == [3, 4, 5]
    assert await offsets(broker, "chat", HistoryQuery(since=since(1), limit=-1)) == [3, 4, 5]
    assert (await broker.history("chat", HistoryQuery())).position.offset == 5


@history
async def test_history_ttl_drops_publications_but_keeps_the_position(broker: Broker, rig: BrokerRig) -> None:
    opts = PublishOptions(history_size=10, history_ttl=2.0)
    results = await publish_many(broker, "chat", 2, opts)

    await rig.advance(1.0)
    await broker.publish("chat", b"{}", opts)
    await rig.advance(1.5)
    kept = await offsets(broker, "chat")
    await rig.advance(1.0)
    expired = await broker.history("chat", ALL)

    assert kept == [1, 2, 3], "the TTL counts from the latest publication"
    assert expired.publications == []
    assert expired.position == StreamPosition(3, results[0].position.epoch)


@history
async def test_meta_ttl_expiry_starts_a_new_epoch_at_offset_zero(broker: Broker, rig: BrokerRig) -> None:
    opts = PublishOptions(history_size=10, history_ttl=1.0, history_meta_ttl=3.0)
    old = (await broker.publish("chat", b"{}", opts)).position

    await rig.advance(4.0)
    lost = await broker.history("chat", HistoryQuery())
    renewed = await broker.publish("chat", b"{}", opts)

    assert lost.position.offset == 0
    assert lost.position.epoch not in ("", old.epoch)
    assert renewed.position == StreamPosition(1, lost.position.epoch)


@history
async def test_history_read_with_meta_ttl_extends_the_stream_life(broker: Broker, rig: BrokerRig) -> None:
    opts = PublishOptions(history_size=10, history_ttl=1.0, history_meta_ttl=3.0)
    old = (await broker.publish("chat", b"{}", opts)).position

    await rig.advance(2.0)
    await broker.history("chat", HistoryQuery(meta_ttl=3.0))
    await rig.advance(2.0)
    kept = await broker.history("chat", HistoryQuery(meta_ttl=3.0))

    assert kept.position == old


@history
async def test_remove_history_keeps_offset_and_epoch(broker: Broker) -> None:
    results = await publish_many(broker, "chat", 3)

    await broker.remove_history("chat")
    emptied = await broker.history("chat", ALL)
    next_one = await broker.publish("chat", b"{}", KEPT)

    assert emptied.publications == []
    assert emptied.position == results[-1].position
    assert next_one.position == StreamPosition(4, results[0].position.epoch)


@history
async def test_remove_history_of_an_unknown_channel_is_harmless(broker: Broker) -> None:
    await broker.remove_history("nobody-published-here")


# Publish options


@pytest.mark.parametrize(
    "opts",
    [PublishOptions(), PublishOptions(history_size=10), PublishOptions(history_ttl=60.0)],
    ids=["no-history", "size-only", "ttl-only"],
)
async def test_without_history_publications_get_no_offset(
    broker: Broker, handler: RecordingHandler, opts: PublishOptions
) -> None:
    await broker.subscribe(["chat"])

    result = await broker.publish("chat", b"{}", opts)
    await handler.wait_for(1)

    assert result.position == StreamPosition()
    assert [(e.pub.offset, e.position) for e in handler.publications] == [(0, StreamPosition())]


@history
async def test_without_history_the_stream_does_not_move(broker: Broker) -> None:
    await publish_many(broker, "chat", 2)

    await broker.publish("chat", b"{}", PublishOptions())

    assert await offsets(broker, "chat") == [1, 2]


@pytest.mark.parametrize("opts", [KEPT, PublishOptions()], ids=["history", "no-history"])
async def test_idempotency_key_returns_the_first_result_without_delivering_again(
    broker: Broker, rig: BrokerRig, handler: RecordingHandler, opts: PublishOptions
) -> None:
    if opts.history_size and not broker.supports_history:
        pytest.skip("keeps no history")
    keyed = PublishOptions(
        history_size=opts.history_size, history_ttl=opts.history_ttl, idempotency_key="order-7"
    )
    await broker.subscribe(["chat"])

    first = await broker.publish("chat", b"{}", keyed)
    second = await broker.publish("chat", b"{}", keyed)
    other_channel = await broker.publish("other", b"{}", keyed)
    await rig.settle()

    assert not first.suppressed
    assert second == PublishResult(first.position, suppressed=True, suppress_reason="idempotency")
    assert not other_channel.suppressed
    assert len(handler.publications) == 1


@history
async def test_idempotency_key_is_forgotten_after_its_ttl(broker: Broker, rig: BrokerRig) -> None:
    keyed = PublishOptions(history_size=10, history_ttl=60.0, idempotency_key="k", idempotent_result_ttl=2.0)

    first = await broker.publish("chat", b"{}", keyed)
    await rig.advance(3.0)
    again = await broker.publish("chat", b"{}", keyed)

    assert not again.suppressed
    assert again.position.offset == first.position.offset + 1


def versioned(version: int, version_epoch: str = "") -> PublishOptions:
    return PublishOptions(history_size=10, history_ttl=60.0, version=version, version_epoch=version_epoch)


@history
@pytest.mark.parametrize(
    ("later", "suppressed"),
    [
        (versioned(1), True),
        (versioned(2), True),
        (versioned(3), False),
        (versioned(1, "e1"), True),
        (versioned(1, "e2"), False),
    ],
    ids=["older", "same", "newer", "older-same-epoch", "older-new-epoch"],
)
async def test_versioned_publish_drops_outdated_versions(
    broker: Broker, rig: BrokerRig, handler: RecordingHandler, later: PublishOptions, suppressed: bool
) -> None:
    await broker.subscribe(["doc"])
    first = await broker.publish("doc", b'{"v":2}', versioned(2, "e1"))

    result = await broker.publish("doc", b"{}", later)
    await rig.settle()

    assert result.suppressed is suppressed
    assert result.suppress_reason == ("version" if suppressed else "")
    if suppressed:
        assert result.position == first.position
        assert len(handler.publications) == 1
        assert await offsets(broker, "doc") == [1]
    else:
        assert result.position.offset == 2
        assert len(handler.publications) == 2


# Delivery to the handler


async def test_publications_reach_the_handler_in_offset_order(
    broker: Broker, handler: RecordingHandler
) -> None:
    opts = KEPT if broker.supports_history else PublishOptions()
    await broker.subscribe(["chat"])

    results = await publish_many(broker, "chat", 3, opts)
    await handler.wait_for(3)

    assert [e.channel for e in handler.publications] == ["chat"] * 3
    assert [e.position for e in handler.publications] == [r.position for r in results]
    assert [e.pub.offset for e in handler.publications] == [r.position.offset for r in results]
    assert [e.pub.data for e in handler.publications] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']


async def test_publication_carries_info_and_tags_and_no_time(
    broker: Broker, handler: RecordingHandler
) -> None:
    """No time: Centrifugo's publications reach clients without one (its core strips it)."""
    info = pb.ClientInfo(user="42", client="c1", conn_info=b'{"name":"Ann"}')
    opts = PublishOptions(client_info=info, tags={"kind": "greeting"})
    await broker.subscribe(["chat"])

    await broker.publish("chat", b'{"text":"hi"}', opts)
    await handler.wait_for(1)

    pub = handler.publications[0].pub
    assert pub.info == info
    assert dict(pub.tags) == {"kind": "greeting"}
    assert pub.time == 0


async def test_only_subscribed_channels_are_delivered(
    broker: Broker, rig: BrokerRig, handler: RecordingHandler
) -> None:
    await broker.subscribe(["a"])

    await broker.publish("b", b"{}", PublishOptions())
    await broker.publish("a", b"{}", PublishOptions())
    await handler.wait_for(1)
    await rig.settle()

    assert [e.channel for e in handler.publications] == ["a"]


async def test_unsubscribe_stops_delivery(broker: Broker, rig: BrokerRig, handler: RecordingHandler) -> None:
    await broker.subscribe(["a"])
    await broker.subscribe(["a"])
    await broker.publish("a", b"{}", PublishOptions())
    await handler.wait_for(1)

    await broker.unsubscribe(["a"])
    await broker.unsubscribe(["a", "never-subscribed"])
    await broker.publish("a", b"{}", PublishOptions())
    await rig.settle()

    assert len(handler.publications) == 1


@history
async def test_delta_passes_the_previous_publication(broker: Broker, handler: RecordingHandler) -> None:
    opts = PublishOptions(history_size=10, history_ttl=60.0, use_delta=True)
    await broker.subscribe(["prices"])

    await broker.publish("prices", b'{"p":1}', opts)
    await broker.publish("prices", b'{"p":2}', opts)
    await handler.wait_for(2)

    first, second = handler.publications
    assert (first.delta, first.prev) == (True, None)
    assert second.delta is True
    assert second.prev is not None
    assert (second.prev.offset, second.prev.data) == (1, b'{"p":1}')


async def test_without_delta_no_previous_publication_is_passed(
    broker: Broker, handler: RecordingHandler
) -> None:
    opts = KEPT if broker.supports_history else PublishOptions()
    await broker.subscribe(["prices"])

    await publish_many(broker, "prices", 2, opts)
    await handler.wait_for(2)

    assert [(e.delta, e.prev) for e in handler.publications] == [(False, None), (False, None)]


async def test_join_and_leave_reach_subscribed_channels(
    broker: Broker, rig: BrokerRig, handler: RecordingHandler
) -> None:
    info = pb.ClientInfo(user="42", client="c1")
    await broker.subscribe(["room"])

    await broker.publish_join("elsewhere", info)
    await broker.publish_join("room", info)
    await broker.publish_leave("room", info)
    await broker.publish_leave("elsewhere", info)
    await handler.wait_for(2)
    await rig.settle()

    assert handler.events == [JoinEvent("room", info), LeaveEvent("room", info)]


# The memory engine's own guarantees


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def memory(clock: FakeClock, handler: RecordingHandler) -> AsyncIterator[MemoryBroker]:
    made = MemoryBroker(clock=clock, sweep_interval=0.01)
    await made.start(handler)
    yield made
    await made.close()


async def test_memory_delivers_before_publish_returns(
    memory: MemoryBroker, handler: RecordingHandler
) -> None:
    await memory.subscribe(["chat"])

    await memory.publish("chat", b"{}", KEPT)

    assert len(handler.publications) == 1


async def test_memory_sweep_drops_what_expired(memory: MemoryBroker, clock: FakeClock) -> None:
    await memory.publish("data", b"{}", PublishOptions(history_size=1, history_ttl=1.0))
    await memory.publish("meta", b"{}", PublishOptions(history_size=1, history_ttl=1.0, history_meta_ttl=2.0))
    await memory.publish("key", b"{}", PublishOptions(idempotency_key="k", idempotent_result_ttl=1.0))

    assert memory.sweep() == 0
    await clock.advance(1.5)
    assert memory.sweep() == 3, "publications of data and meta, and the idempotency result"
    await clock.advance(1.0)
    assert memory.sweep() == 1, "the meta stream itself"


async def test_memory_sweep_keeps_what_was_extended_or_removed(
    memory: MemoryBroker, clock: FakeClock
) -> None:
    opts = PublishOptions(history_size=5, history_ttl=1.0)
    await memory.publish("extended", b"{}", opts)
    await memory.publish("removed", b"{}", opts)
    await clock.advance(0.5)
    await memory.publish("extended", b"{}", opts)
    await memory.remove_history("removed")

    await clock.advance(0.7)

    assert memory.sweep() == 0
    assert await offsets(memory, "extended") == [1, 2]


async def test_memory_start_and_close_are_idempotent(clock: FakeClock, handler: RecordingHandler) -> None:
    made = MemoryBroker(clock=clock)
    await made.close()
    await made.start(handler)
    await made.start(handler)
    await made.close()
    await made.close()


async def test_memory_sweeps_periodically_once_started(memory: MemoryBroker, clock: FakeClock) -> None:
    await memory.publish("data", b"{}", PublishOptions(history_size=1, history_ttl=1.0))
    await clock.advance(2.0)
    reads = clock.reads

    async with asyncio.timeout(5.0):
        while clock.reads == reads:
            await asyncio.sleep(0.01)

    assert memory.sweep() == 0, "the periodic sweep already dropped the expired publication"


async def test_memory_default_meta_ttl_applies_when_a_publish_names_none(
    clock: FakeClock, handler: RecordingHandler
) -> None:
    made = MemoryBroker(clock=clock, history_meta_ttl=5.0)
    old = await made.publish("chat", b"{}", KEPT)

    await clock.advance(6.0)
    renewed = await made.publish("chat", b"{}", KEPT)

    assert renewed.position.offset == 1
    assert renewed.position.epoch != old.position.epoch
