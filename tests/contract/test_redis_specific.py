"""What only the Redis engine promises: surviving a Redis restart, failing fast, several nodes on one
Redis, pipelined bursts, positions checked after a reconnect, list-kept history, presence expiry,
sharding and Cluster details.

See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field

import hiredis
import pytest
from helpers import redis_servers
from helpers.recording import RecordingTransport, connected, json_messages
from helpers.redis_servers import RedisProcess, RedisSetup
from redis.asyncio import Redis
from redis.crc import key_slot

from rotary.engines.base import EngineError, HistoryQuery, PublishOptions, StreamPosition
from rotary.engines.memory import MemoryBroker
from rotary.engines.redis import (
    RedisBroker,
    RedisBrokerOptions,
    RedisOptions,
    RedisPresenceManager,
    RedisPresenceOptions,
)
from rotary.engines.redis.addresses import Address, parse_address
from rotary.engines.redis.history import select_range
from rotary.engines.redis.keys import KeySpace
from rotary.engines.redis.resp import encode_command
from rotary.engines.redis.shards import jump_hash, shard_index, with_url_options
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes, pb

from .conftest import RecordingHandler

KEPT = PublishOptions(history_size=10, history_ttl=60.0)
IO_TIMEOUT = 0.5
FAIL_FAST_SLACK = 2.0
"""Seconds a failure may come after the I/O timeout on a loaded machine. Still telling: a hang, or one
timeout per queued call, would take far longer."""


@pytest.fixture
def own_server() -> Iterator[RedisProcess]:
    """A redis-server of this test alone, which it may kill and start again."""
    setup = redis_servers.start_standalone()
    yield setup.processes[0]
    setup.stop()


def standalone_options(server: RedisProcess, **overrides: object) -> RedisOptions:
    setup = RedisSetup("standalone", [server], (server.address,), (server.address,))
    return redis_servers.options_for(setup, redis_servers.unique_prefix(), io_timeout=IO_TIMEOUT, **overrides)


async def started(options: RedisBrokerOptions, handler: PositionsHandler) -> RedisBroker:
    broker = RedisBroker(options)
    await broker.start(handler)
    return broker


async def subscriber_count(server: RedisProcess, name: str) -> int:
    async with Redis(host="127.0.0.1", port=server.port) as client:
        counts = await client.pubsub_numsub(name)
        return int(counts[0][1])


async def reads_processed(server: RedisProcess) -> int:
    """Read events Redis handled: one per round trip of a client (a long pipeline may take a few)."""
    async with Redis(host="127.0.0.1", port=server.port) as client:
        return int((await client.info("stats"))["total_reads_processed"])


async def flush_scripts(server: RedisProcess) -> None:
    async with Redis(host="127.0.0.1", port=server.port) as client:
        await client.script_flush()


async def drop_pubsub_connections(server: RedisProcess) -> None:
    """A network blip on the PUB/SUB side only: Redis keeps its data, commands keep flowing."""
    async with Redis(host="127.0.0.1", port=server.port) as client:
        await client.client_kill_filter(_type="pubsub")


@dataclass(slots=True)
class PositionsHandler(RecordingHandler):
    """Also records what ``handle_resubscribed`` is told."""

    resubscribed: list[dict[str, StreamPosition]] = field(default_factory=list)
    _reported: asyncio.Event = field(default_factory=asyncio.Event)

    def handle_resubscribed(self, positions: Mapping[str, StreamPosition]) -> None:
        self.resubscribed.append(dict(positions))
        self._reported.set()

    async def next_report(self, timeout: float = 10.0) -> dict[str, StreamPosition]:
        async with asyncio.timeout(timeout):
            await self._reported.wait()
        self._reported.clear()
        return self.resubscribed[-1]


# Faults


async def test_broker_resubscribes_after_redis_restarts_and_fails_fast_while_down(
    own_server: RedisProcess,
) -> None:
    options = standalone_options(own_server)
    handler = PositionsHandler()
    broker = await started(RedisBrokerOptions(options), handler)
    await broker.subscribe(["chat"])
    await broker.publish("chat", b'{"before":1}', KEPT)
    await handler.wait_for(1)

    own_server.kill()
    for call in (broker.publish("chat", b"{}", KEPT), broker.history("chat", HistoryQuery(limit=-1))):
        began = time.monotonic()
        with pytest.raises(EngineError):
            await call
        assert time.monotonic() - began < IO_TIMEOUT + FAIL_FAST_SLACK

    own_server.start()
    name = KeySpace(options.prefix).pubsub("chat")
    async with asyncio.timeout(10):
        while await subscriber_count(own_server, name) == 0:
            await asyncio.sleep(0.05)
    after = await broker.publish("chat", b'{"after":1}', KEPT)
    await handler.wait_for(2)
    await broker.close()

    assert [event.pub.data for event in handler.publications] == [b'{"before":1}', b'{"after":1}']
    assert handler.publications[1].position == after.position
    assert after.position.offset == 1, "the restarted Redis lost the stream, so a new epoch begins"


async def test_every_queued_publish_fails_fast_on_a_hanging_redis(own_server: RedisProcess) -> None:
    broker = await started(RedisBrokerOptions(standalone_options(own_server)), PositionsHandler())
    await broker.publish("warm", b"{}", KEPT)
    assert own_server.process is not None
    pid = own_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        outcomes = await asyncio.gather(
            *(broker.publish(f"room:{n}", b"{}", KEPT) for n in range(2000)), return_exceptions=True
        )
        elapsed = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
    await broker.close()

    assert all(isinstance(outcome, EngineError) for outcome in outcomes)
    assert elapsed < IO_TIMEOUT + FAIL_FAST_SLACK


async def test_a_hanging_redis_answers_with_engine_error_within_the_io_timeout(
    own_server: RedisProcess,
) -> None:
    broker = await started(RedisBrokerOptions(standalone_options(own_server)), PositionsHandler())
    elapsed = await failed_publish_while_hung(own_server, broker)
    assert IO_TIMEOUT * 0.8 <= elapsed < IO_TIMEOUT + FAIL_FAST_SLACK


async def failed_publish_while_hung(server: RedisProcess, broker: RedisBroker) -> float:
    """Seconds a publish takes to fail with EngineError while ``server`` is stopped (SIGSTOP); closes
    the broker after."""
    assert server.process is not None
    pid = server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        with pytest.raises(EngineError):
            await broker.publish("chat", b"{}", KEPT)
        elapsed = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
    await broker.close()
    return elapsed


async def test_starting_against_a_redis_that_is_down_fails_with_engine_error(
    own_server: RedisProcess,
) -> None:
    own_server.kill()
    broker = RedisBroker(RedisBrokerOptions(standalone_options(own_server)))

    with pytest.raises(EngineError):
        await broker.start(PositionsHandler())
    await broker.close()


# Bursts share round trips


async def test_concurrent_publishes_share_round_trips(own_server: RedisProcess) -> None:
    broker = await started(RedisBrokerOptions(standalone_options(own_server)), PositionsHandler())
    await broker.publish("warm", b"{}", KEPT)

    before = await reads_processed(own_server)
    for n in range(20):
        await broker.publish(f"one-by-one:{n}", b"{}", KEPT)
    sequential = await reads_processed(own_server) - before - 1
    before = await reads_processed(own_server)
    results = await asyncio.gather(*(broker.publish(f"room:{n}", b"{}", KEPT) for n in range(1000)))
    concurrent = await reads_processed(own_server) - before - 1
    await broker.close()

    assert sequential >= 20, "each awaited publish is a round trip of its own"
    assert concurrent <= 40, f"1000 concurrent publishes took {concurrent} reads"
    assert {result.position.offset for result in results} == {1}


async def test_a_burst_after_redis_lost_its_scripts_keeps_each_channels_order(
    own_server: RedisProcess,
) -> None:
    handler = PositionsHandler()
    broker = await started(RedisBrokerOptions(standalone_options(own_server)), handler)
    await broker.subscribe(["hot"])
    await broker.publish("hot", b"0", KEPT)

    await flush_scripts(own_server)
    calls = [("hot" if n % 2 else f"cold:{n}", n) for n in range(1, 201)]
    results = await asyncio.gather(*(broker.publish(channel, str(n).encode(), KEPT) for channel, n in calls))
    await handler.wait_for(101)
    await broker.close()

    hot = [
        result.position.offset
        for (channel, _), result in zip(calls, results, strict=True)
        if channel == "hot"
    ]
    assert hot == list(range(2, 102))
    assert [event.pub.data for event in handler.publications] == [b"0"] + [
        str(n).encode() for channel, n in calls if channel == "hot"
    ]


# Positions after a reconnect


async def test_positions_are_reported_when_the_pubsub_connection_comes_back(own_server: RedisProcess) -> None:
    handler = PositionsHandler()
    broker = await started(RedisBrokerOptions(standalone_options(own_server)), handler)
    await broker.subscribe(["chat", "quiet"])
    first = await broker.publish("chat", b"{}", KEPT)

    await drop_pubsub_connections(own_server)
    after_blip = await handler.next_report()
    own_server.kill()
    own_server.start()
    after_restart = await handler.next_report()
    await broker.close()

    assert after_blip == {"chat": first.position, "quiet": StreamPosition()}
    assert after_restart == {"chat": StreamPosition(), "quiet": StreamPosition()}, "the streams are gone"


class PositionedHooks(AllowAllHooks):
    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(positioned=True, recoverable=True)


@pytest.fixture
async def redis_node(own_server: RedisProcess) -> AsyncIterator[Node]:
    broker = RedisBroker(RedisBrokerOptions(standalone_options(own_server)))
    node = Node(
        NodeConfig(ping_interval=0, presence_update_interval=0), hooks=PositionedHooks(), broker=broker
    )
    await node.start()
    yield node
    await node.shutdown(timeout=1)


def unsubscribe_codes(transport: RecordingTransport) -> dict[str, int]:
    found = {}
    for message in json_messages(transport):
        push = message.get("push")
        if isinstance(push, dict) and "unsubscribe" in push:
            found[push["channel"]] = push["unsubscribe"]["code"]
    return found


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_a_restart_tells_positioned_subscribers_without_a_publication(
    own_server: RedisProcess, redis_node: Node
) -> None:
    await redis_node.publish("chat", b"{}", KEPT)
    client_side = RecordingTransport()
    await connected(redis_node, client_side, "chat")
    server_side = RecordingTransport()
    client = await connected(redis_node, server_side, "other")
    await redis_node.subscribe("", "news", SubscribeOptions(positioned=True), client_id=client.id)

    own_server.kill()
    own_server.start()
    await eventually(lambda: "chat" in unsubscribe_codes(client_side) and server_side.closed_with is not None)

    assert unsubscribe_codes(client_side) == {"chat": codes.UNSUBSCRIBE_INSUFFICIENT_STATE.code}
    assert server_side.closed_with == codes.DISCONNECT_INSUFFICIENT_STATE


async def test_a_publication_lost_in_a_blip_ends_only_the_subscriptions_behind(
    own_server: RedisProcess, redis_node: Node
) -> None:
    await redis_node.publish("chat", b"{}", KEPT)
    await redis_node.publish("calm", b"{}", KEPT)
    transport = RecordingTransport()
    client = await connected(redis_node, transport, "chat")
    await redis_node.subscribe("", "calm", SubscribeOptions(positioned=True), client_id=client.id)

    await drop_pubsub_connections(own_server)
    await redis_node.publish("chat", b'{"lost":true}', KEPT)
    await eventually(lambda: "chat" in unsubscribe_codes(transport))

    assert unsubscribe_codes(transport) == {"chat": codes.UNSUBSCRIBE_INSUFFICIENT_STATE.code}
    assert transport.closed_with is None and client.is_subscribed("calm")


class ChannelCommandRelay:
    """A real TCP hop to Redis that holds back (UN)SUBSCRIBE commands until the test releases them,
    in order, while everything else (PING included) passes: a PUB/SUB link whose channel commands
    reach Redis late, as on a loaded or slow link."""

    def __init__(self, server: RedisProcess) -> None:
        self._upstream = server.port
        self.held: list[list[bytes]] = []
        self._writers: list[asyncio.StreamWriter] = []
        """Toward Redis, one per connection relayed."""
        self._opened: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._opened:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def release(self, count: int) -> None:
        released, self.held = self.held[:count], self.held[count:]
        for command in released:
            self._writers[-1].write(encode_command(*command))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        self._writers.append(up_writer)
        self._opened += [writer, up_writer]
        back = asyncio.create_task(self._copy(up_reader, writer))
        self._tasks.add(back)
        parser = hiredis.Reader()
        while data := await reader.read(65536):
            parser.feed(data)
            while (command := parser.gets()) is not False:
                if command[0].upper() in (b"SUBSCRIBE", b"UNSUBSCRIBE") and self._writers[-1] is up_writer:
                    self.held.append(command)
                else:
                    up_writer.write(encode_command(*command))

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)


async def test_a_late_confirmation_of_an_abandoned_subscribe_does_not_confirm_the_next_one(
    own_server: RedisProcess,
) -> None:
    relay = ChannelCommandRelay(own_server)
    address = await relay.start()
    handler = RecordingHandler()
    broker = await started(RedisBrokerOptions(standalone_options(own_server, addresses=(address,))), handler)
    try:
        with pytest.raises(EngineError, match="not confirmed"):
            await broker.subscribe(["news"])  # its SUBSCRIBE is held past the I/O timeout
        second = asyncio.create_task(broker.subscribe(["news"]))
        async with asyncio.timeout(10):
            while len(relay.held) < 3:  # SUBSCRIBE, the UNSUBSCRIBE of the timeout, SUBSCRIBE
                await asyncio.sleep(0.01)

        relay.release(2)  # Redis subscribes, answers, then unsubscribes: "news" is not live
        await broker.sync()  # the answers to both reached the subscriber
        await asyncio.wait([second], timeout=0.2)
        assert not second.done(), "confirmed by the answer to the abandoned SUBSCRIBE"

        relay.release(1)
        await second
        await broker.publish("news", b"{}", KEPT)
        await broker.sync()
        assert [event.channel for event in handler.publications] == ["news"]
    finally:
        await broker.close()
        await relay.close()


async def test_a_subscribe_withdrawn_before_its_confirmation_does_not_return_as_live(
    own_server: RedisProcess,
) -> None:
    """An unsubscribe of a channel whose SUBSCRIBE is not confirmed yet: the subscribe waiting for
    it must fail, not return as if the channel were live (its caller would then count on it)."""
    relay = ChannelCommandRelay(own_server)
    address = await relay.start()
    handler = RecordingHandler()
    options = standalone_options(own_server, addresses=(address,))
    broker = await started(RedisBrokerOptions(options), handler)
    try:
        waiting = asyncio.create_task(broker.subscribe(["news"]))
        async with asyncio.timeout(10):
            while not relay.held:
                await asyncio.sleep(0.01)
        await broker.unsubscribe(["news"])
        with pytest.raises(EngineError, match="withdrawn"):
            await waiting

        relay.release(len(relay.held))  # SUBSCRIBE, then the UNSUBSCRIBE
        await broker.sync()
        assert await subscriber_count(own_server, KeySpace(options.prefix).pubsub("news")) == 0
    finally:
        await broker.close()
        await relay.close()


class PositionedOnlyChatHooks(AllowAllHooks):
    """``chat`` keeps a position; ``plain`` is a channel without history."""

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        kept = request.channel == "chat"
        return SubscribeOptions(positioned=kept, recoverable=kept)


async def test_a_pubsub_blip_ends_the_subscriptions_to_channels_without_history(
    own_server: RedisProcess,
) -> None:
    broker = RedisBroker(RedisBrokerOptions(standalone_options(own_server)))
    node = Node(
        NodeConfig(ping_interval=0, presence_update_interval=0),
        hooks=PositionedOnlyChatHooks(),
        broker=broker,
    )
    await node.start()
    try:
        await node.publish("chat", b"{}", KEPT)
        transport = RecordingTransport()
        client = await connected(node, transport, "plain")
        await client.handle_frame(b'{"id":9,"subscribe":{"channel":"chat"}}')
        await eventually(lambda: client.is_subscribed("chat"))

        await drop_pubsub_connections(own_server)
        await eventually(lambda: "plain" in unsubscribe_codes(transport))

        assert unsubscribe_codes(transport) == {"plain": codes.UNSUBSCRIBE_INSUFFICIENT_STATE.code}
        assert transport.closed_with is None and client.is_subscribed("chat"), "chat missed nothing"
    finally:
        await node.shutdown(timeout=1)


# Several nodes on one Redis


@pytest.fixture(params=["standalone", "cluster", "sharded"])
def setup(request: pytest.FixtureRequest) -> RedisSetup:
    return redis_servers.shared(request.param)


@pytest.fixture
async def two_nodes(setup: RedisSetup) -> AsyncIterator[tuple[RedisBroker, RecordingHandler, RedisBroker]]:
    options = RedisBrokerOptions(redis_servers.options_for(setup, redis_servers.unique_prefix()))
    handler = PositionsHandler()
    receiver = await started(options, handler)
    sender = await started(options, PositionsHandler())
    yield receiver, handler, sender
    await receiver.close()
    await sender.close()


async def test_a_publication_on_one_node_reaches_the_other_with_its_position(
    two_nodes: tuple[RedisBroker, RecordingHandler, RedisBroker],
) -> None:
    receiver, handler, sender = two_nodes
    info = pb.ClientInfo(user="42", client="c1")
    await receiver.subscribe(["news", "odd{channel}name"])

    results = [await sender.publish(channel, b"{}", KEPT) for channel in ("news", "odd{channel}name", "news")]
    await sender.publish_join("news", info)
    await handler.wait_for(4)

    assert [(e.channel, e.position) for e in handler.publications] == [
        ("news", results[0].position),
        ("odd{channel}name", results[1].position),
        ("news", results[2].position),
    ]
    assert (await receiver.history("odd{channel}name", HistoryQuery(limit=-1))).position == results[
        1
    ].position


async def test_subscribing_many_channels_at_once(
    two_nodes: tuple[RedisBroker, RecordingHandler, RedisBroker],
) -> None:
    receiver, handler, sender = two_nodes
    channels = [f"room:{n}" for n in range(1500)]

    await asyncio.gather(receiver.subscribe(channels[:700]), receiver.subscribe(channels[700:]))
    for channel in channels[::100]:
        await sender.publish(channel, b"{}", PublishOptions())
    await handler.wait_for(15)

    # Order holds per channel only: with sharding, channels reach the receiver over different connections.
    assert sorted(e.channel for e in handler.publications) == sorted(channels[::100])


async def test_presence_is_shared_by_nodes(setup: RedisSetup) -> None:
    options = RedisPresenceOptions(redis_servers.options_for(setup, redis_servers.unique_prefix()))
    one, other = RedisPresenceManager(options), RedisPresenceManager(options)
    info = pb.ClientInfo(user="42", client="c1")

    await one.add_presence("room", "c1", info)
    seen = await other.presence("room")
    await one.close()
    await other.close()

    assert seen == {"c1": info}


# History kept in lists


QUERIES = [
    HistoryQuery(limit=-1),
    HistoryQuery(limit=2),
    HistoryQuery(limit=2, reverse=True),
    HistoryQuery(limit=-1, reverse=True),
    HistoryQuery(since=StreamPosition(2), limit=-1),
    HistoryQuery(since=StreamPosition(1), limit=2),
    HistoryQuery(since=StreamPosition(5), limit=-1),
    HistoryQuery(since=StreamPosition(6), limit=-1, reverse=True),
    HistoryQuery(since=StreamPosition(5), limit=1, reverse=True),
    HistoryQuery(since=StreamPosition(3), limit=-1, reverse=True),
    HistoryQuery(since=StreamPosition(9), limit=-1, reverse=True),
]


async def test_list_history_answers_every_query_like_the_reference(own_server: RedisProcess) -> None:
    trimmed = PublishOptions(history_size=3, history_ttl=60.0)
    options = RedisBrokerOptions(standalone_options(own_server), history_use_lists=True)
    lists = await started(options, PositionsHandler())
    reference = MemoryBroker()
    for n in range(6):
        await lists.publish("chat", b'{"n":%d}' % n, trimmed)
        await reference.publish("chat", b'{"n":%d}' % n, trimmed)

    got = [[p.offset for p in (await lists.history("chat", q)).publications] for q in QUERIES]
    want = [[p.offset for p in (await reference.history("chat", q)).publications] for q in QUERIES]
    await lists.close()

    assert got == want


def test_select_range_of_an_empty_list() -> None:
    assert select_range([], 5, HistoryQuery(limit=-1)) == []


async def test_list_history_passes_delta_and_keeps_positions(own_server: RedisProcess) -> None:
    handler = PositionsHandler()
    lists = await started(RedisBrokerOptions(standalone_options(own_server), history_use_lists=True), handler)
    opts = PublishOptions(history_size=10, history_ttl=60.0, use_delta=True)
    await lists.subscribe(["prices"])

    await lists.publish("prices", b'{"p":1}', opts)
    second = await lists.publish("prices", b'{"p":2}', opts)
    await handler.wait_for(2)
    await lists.close()

    last = handler.publications[1]
    assert last.position == second.position
    assert last.prev is not None
    assert (last.prev.offset, last.prev.data) == (1, b'{"p":1}')


# Presence expiry


async def test_presence_entries_lapse_unless_refreshed(own_server: RedisProcess) -> None:
    options = standalone_options(own_server)
    presence = RedisPresenceManager(RedisPresenceOptions(options, presence_ttl=60.0))

    async def time_passes(seconds: float) -> None:
        await redis_servers.shift_presence_lapse_times([own_server.address], options.prefix, seconds)

    await presence.add_presence("room", "stays", pb.ClientInfo(user="1", client="stays"))
    await presence.add_presence("room", "goes", pb.ClientInfo(user="2", client="goes"))

    await time_passes(40.0)
    await presence.add_presence("room", "stays", pb.ClientInfo(user="1", client="stays"))
    await time_passes(40.0)
    stats = await presence.presence_stats("room")
    entries = await presence.presence("room")
    await presence.close()

    assert (stats.num_clients, stats.num_users) == (1, 1)
    assert list(entries) == ["stays"]


async def test_many_first_uses_at_once_share_one_connection_attempt(own_server: RedisProcess) -> None:
    """A node's first burst of subscribes (a reconnect storm after a restart) reaches a presence
    manager that connects on first use: every caller waits for the one attempt. Every caller but
    the first used to fail with AttributeError once the attempt was done, and its client got error 100."""
    presence = RedisPresenceManager(RedisPresenceOptions(standalone_options(own_server), presence_ttl=60.0))
    clients = [f"c{n}" for n in range(20)]
    await asyncio.gather(
        *(presence.add_presence("room", c, pb.ClientInfo(user=c, client=c)) for c in clients)
    )
    stats = await presence.presence_stats("room")
    await presence.close()
    assert stats.num_clients == len(clients)


# Sharding and Cluster


def test_jump_hash_moves_only_the_channels_of_a_new_shard() -> None:
    keys = range(2000)
    before = [jump_hash(k * 7919, 3) for k in keys]
    after = [jump_hash(k * 7919, 4) for k in keys]

    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert all(a == 3 for _, a in moved)
    assert 300 < len(moved) < 700
    assert {shard_index(f"ch{n}", 2) for n in range(50)} == {0, 1}
    assert shard_index("anything", 1) == 0


async def test_sharded_channels_spread_over_both_servers() -> None:
    setup = redis_servers.shared("sharded")
    options = redis_servers.options_for(setup, redis_servers.unique_prefix())
    broker = await started(RedisBrokerOptions(options), PositionsHandler())

    for n in range(20):
        await broker.publish(f"ch{n}", b"{}", KEPT)
    await broker.close()

    for address in setup.masters:
        host, port = redis_servers.split_address(address)
        async with Redis(host=host, port=port) as client:
            assert await client.keys(f"{options.prefix}.history.*")


async def test_a_cluster_is_detected_from_a_plain_address() -> None:
    setup = redis_servers.shared("cluster")
    options = redis_servers.options_for(
        setup, redis_servers.unique_prefix(), addresses=setup.addresses[:1], cluster_addresses=()
    )
    handler = PositionsHandler()
    broker = await started(RedisBrokerOptions(options), handler)
    channels = [f"c{n}" for n in range(12)]
    await broker.subscribe(channels)

    for channel in channels:
        await broker.publish(channel, b"{}", KEPT)
    await handler.wait_for(len(channels))
    await broker.close()

    assert sorted(e.channel for e in handler.publications) == sorted(channels)


@pytest.mark.parametrize("channel", ["news", "a{b}c", "}x", "{", "user#42"])
def test_every_key_of_a_channel_shares_one_cluster_slot(channel: str) -> None:
    keys = KeySpace("centrifugo")
    names = [
        keys.stream(channel),
        keys.meta(channel),
        keys.result(channel, "{idem}"),
        keys.pubsub(channel),
        keys.presence_expiry(channel),
        keys.presence_info(channel),
        keys.presence_users(channel),
    ]
    assert len({key_slot(name.encode()) for name in names}) == 1


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("127.0.0.1:6380", Address((("127.0.0.1", 6380),))),
        ("localhost", Address((("localhost", 6379),))),
        ("redis://u:p%40ss@h:1/3", Address((("h", 1),), db=3, user="u", password="p@ss")),
        ("rediss://h:2", Address((("h", 2),), tls=True)),
        ("redis://h:2?tls_enabled=true", Address((("h", 2),), tls=True)),
        (
            "rediss+sentinel://s1?sentinel_master_name=m",
            Address((("s1", 26379),), tls=True, sentinel_master_name="m", sentinel_tls=True),
        ),
        (
            "redis+sentinel://s1?sentinel_master_name=m&sentinel_tls_enabled=1",
            Address((("s1", 26379),), sentinel_master_name="m", sentinel_tls=True),
        ),
        ("redis://h:1?addr=h2:2&addr=h3:3", Address((("h", 1), ("h2", 2), ("h3", 3)))),
        ("unix:///run/redis.sock?db=2", Address((), unix_path="/run/redis.sock", db=2)),
        (
            "redis+sentinel://s1:26379?sentinel_master_name=m&addr=s2:26380",
            Address((("s1", 26379), ("s2", 26380)), sentinel_master_name="m"),
        ),
    ],
)
def test_address_forms(address: str, parsed: Address) -> None:
    assert parse_address(address) == parsed


def test_address_flag_not_a_go_bool() -> None:
    with pytest.raises(ValueError, match="invalid tls_enabled value: 'yes'"):
        parse_address("redis://h:2?tls_enabled=yes")


def test_address_url_options_override_the_section() -> None:
    """Centrifugo reads these from the URL too (centrifuge's redis_shard.go optionsFromAddress)."""
    address = parse_address(
        "redis+sentinel://s1?sentinel_master_name=m&connect_timeout=250ms&io_timeout=1m30s"
        "&force_resp2=true&sentinel_user=su&sentinel_password=&replica_client_enabled=false"
    )
    section = RedisOptions(connect_timeout=1.0, io_timeout=4.0, sentinel_user="x", sentinel_password="y")
    merged = with_url_options(section, address)
    assert (merged.connect_timeout, merged.io_timeout, merged.force_resp2) == (0.25, 90.0, True)
    assert (merged.sentinel_user, merged.sentinel_password) == ("su", "")
    assert with_url_options(section, parse_address("redis://h:1")) is section


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("redis://h?io_timeout=5", "invalid io timeout: '5'"),
        ("redis://h?connect_timeout=soon", "invalid connect timeout: 'soon'"),
        ("redis://h?force_resp2=yes", "invalid force_resp2 value: 'yes'"),
        ("redis://h?replica_client_enabled=true", "replica_client_enabled=true: reading from Redis replicas"),
    ],
)
def test_address_url_options_that_cannot_work_are_refused(address: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_address(address)


async def test_the_io_timeout_of_the_address_url_applies(own_server: RedisProcess) -> None:
    """The section says 30 s; the URL's 500ms is what bounds a call to a hanging Redis."""
    url = f"redis://{own_server.address}?io_timeout=500ms"
    setup = RedisSetup("standalone", [own_server], (url,), (own_server.address,))
    options = redis_servers.options_for(setup, redis_servers.unique_prefix(), io_timeout=30.0)
    broker = await started(RedisBrokerOptions(options), PositionsHandler())
    assert await failed_publish_while_hung(own_server, broker) < IO_TIMEOUT + FAIL_FAST_SLACK


async def test_resp2_is_spoken_when_forced(own_server: RedisProcess) -> None:
    handler = PositionsHandler()
    broker = await started(RedisBrokerOptions(standalone_options(own_server, force_resp2=True)), handler)
    await broker.subscribe(["chat"])

    result = await broker.publish("chat", b"{}", KEPT)
    history = await broker.history("chat", HistoryQuery(limit=-1))
    await handler.wait_for(1)
    await broker.close()

    assert [p.offset for p in history.publications] == [result.position.offset] == [1]


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
async def test_comma_separated_seeds_make_one_shard(kind: str) -> None:
    """One cluster_address or sentinel_address entry lists the seeds of one shard, comma-separated,
    as Centrifugo reads it; the section's db applies to a sentinel's master (no URL carries it)."""
    setup = redis_servers.shared(kind)
    seeds = ",".join(["127.0.0.1:1", *setup.addresses])  # a dead seed first: the others are tried
    key = {"cluster": "cluster_addresses", "sentinel": "sentinel_addresses"}[kind]
    db = {"cluster": 0, "sentinel": 3}[kind]
    options = redis_servers.options_for(setup, redis_servers.unique_prefix(), db=db, **{key: (seeds,)})
    handler = PositionsHandler()
    broker = await started(RedisBrokerOptions(options), handler)
    await broker.subscribe(["seeded"])
    await broker.publish("seeded", b"{}", KEPT)
    await handler.wait_for(1)
    await broker.close()
    assert [e.channel for e in handler.publications] == ["seeded"]
    if kind == "sentinel":
        host, port = redis_servers.split_address(setup.masters[0])
        async with Redis(host=host, port=port, db=db) as client:
            assert await client.keys(f"{options.prefix}.history.*")
