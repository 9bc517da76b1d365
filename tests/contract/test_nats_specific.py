"""What the NATS broker and controller promise beyond the shared broker contract.

Subjects that any channel name fits into, several nodes on one NATS server, failing fast while
disconnected and resubscribing after a reconnect (with nats-server killed and restarted on the
same port), and control messages to every node or to one.
See https://centrifugal.dev/docs/server/engines#nats-broker
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import nats
import pytest
from helpers.nats_server import NatsServer, nats_server
from nats.aio.msg import Msg

from rotary.engines.base import EngineError, HistoryQuery, PublishOptions
from rotary.engines.nats import NatsBroker, NatsController, NatsOptions, channel_subject
from rotary.protocol import pb
from rotary.server.config.schema_engines import NatsBrokerConfig, NatsRawModeConfig
from rotary.server.config.schema_transports import TLSConfig

from .conftest import JoinEvent, LeaveEvent, PublicationEvent, RecordingHandler

PLAIN = PublishOptions()
FAST_RECONNECT: dict[str, Any] = {"reconnect_min_delay": 0.01, "reconnect_max_delay": 0.05}

BrokerFactory = Callable[..., Awaitable[tuple[NatsBroker, RecordingHandler]]]


@pytest.fixture
def server() -> Iterator[NatsServer]:
    with nats_server() as running:
        yield running


@pytest.fixture
async def start_broker(server: NatsServer) -> AsyncIterator[BrokerFactory]:
    """Starts brokers (nodes) on the test's server; each gets its own recording handler."""
    started: list[NatsBroker] = []

    async def start(**options: Any) -> tuple[NatsBroker, RecordingHandler]:
        broker = NatsBroker(NatsOptions(url=server.url, **options))
        handler = RecordingHandler()
        await broker.start(handler)
        started.append(broker)
        return broker, handler

    yield start
    for broker in started:
        await broker.close()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


# Subjects

ODD_CHANNELS = ["news.sport", "a b", "*", ">", "news.*", "a..b", ".", "caf\u00e9", "%41", "A", "x:y#z$1", ""]


def test_every_channel_is_one_literal_subject_token() -> None:
    subjects = [channel_subject("rotary", channel) for channel in ODD_CHANNELS]

    assert len(set(subjects)) == len(ODD_CHANNELS), "distinct channels get distinct subjects"
    for subject in subjects:
        prefix, kind, token = subject.split(".")
        assert (prefix, kind) == ("rotary", "client")
        assert not set(token) & set(" \t\r\n*>")


async def test_odd_channel_names_travel_on_their_own_subjects(start_broker: BrokerFactory) -> None:
    channels = [channel for channel in ODD_CHANNELS if channel]
    broker, handler = await start_broker()
    await broker.subscribe(channels)

    for channel in channels:
        await broker.publish(channel, channel.encode(), PLAIN)
    await broker.flush()

    assert [(e.channel, e.pub.data) for e in handler.publications] == [(c, c.encode()) for c in channels]


async def test_subjects_keep_centrifugo_layout_under_the_prefix(
    server: NatsServer, start_broker: BrokerFactory
) -> None:
    watcher = await nats.connect(server.url)
    seen: list[str] = []

    async def record(msg: Msg) -> None:
        seen.append(msg.subject)

    await watcher.subscribe("myapp.>", cb=record)
    await watcher.flush()
    broker, _ = await start_broker(prefix="myapp")

    await broker.publish("chat.room", b"{}", PLAIN)
    await broker.publish_join("chat.room", pb.ClientInfo(user="1"))
    await broker.flush()
    await watcher.flush()
    await wait_until(lambda: len(seen) == 2)
    await watcher.close()

    assert seen == ["myapp.client.chat%2Eroom"] * 2


# Nodes


async def test_nodes_receive_each_others_publications_joins_and_leaves(start_broker: BrokerFactory) -> None:
    sender, _ = await start_broker()
    receiver, handler = await start_broker()
    info = pb.ClientInfo(user="42", client="c1", conn_info=b'{"a":1}')
    await receiver.subscribe(["room"])

    await sender.publish(
        "room", b'{"n":1}', PublishOptions(client_info=info, tags={"t": "1"}, use_delta=True)
    )
    await sender.publish_join("room", info)
    await sender.publish_leave("room", info)
    await handler.wait_for(3)

    published, joined, left = handler.events
    assert isinstance(published, PublicationEvent)
    assert (published.pub.data, published.pub.info, dict(published.pub.tags)) == (
        b'{"n":1}',
        info,
        {"t": "1"},
    )
    assert (published.delta, published.pub.delta, published.prev) == (True, False, None)
    assert (joined, left) == (JoinEvent("room", info), LeaveEvent("room", info))


async def test_prefixes_separate_clusters_on_one_server(start_broker: BrokerFactory) -> None:
    first, first_events = await start_broker(prefix="one")
    second, second_events = await start_broker(prefix="two")
    await first.subscribe(["chat"])
    await second.subscribe(["chat"])

    await first.publish("chat", b"{}", PLAIN)
    await first.flush()
    await second.flush()

    assert (len(first_events.events), len(second_events.events)) == (1, 0)


async def test_events_of_one_channel_arrive_in_publish_order(start_broker: BrokerFactory) -> None:
    sender, _ = await start_broker()
    receiver, handler = await start_broker()
    info = pb.ClientInfo(user="u")
    await receiver.subscribe(["feed"])

    expected: list[str] = []
    for n in range(60):
        kind = ("pub", "join", "leave")[n % 3]
        expected.append(kind)
        if kind == "pub":
            await sender.publish("feed", b"%d" % n, PLAIN)
        elif kind == "join":
            await sender.publish_join("feed", info)
        else:
            await sender.publish_leave("feed", info)
    await handler.wait_for(60)

    kinds = {PublicationEvent: "pub", JoinEvent: "join", LeaveEvent: "leave"}
    assert [kinds[type(event)] for event in handler.events] == expected
    assert [e.pub.data for e in handler.publications] == [b"%d" % n for n in range(0, 60, 3)]


async def test_foreign_messages_on_a_channel_subject_are_dropped(
    server: NatsServer, start_broker: BrokerFactory
) -> None:
    broker, handler = await start_broker()
    await broker.subscribe(["chat"])
    intruder = await nats.connect(server.url)

    await intruder.publish(channel_subject("centrifugo", "chat"), b"")
    await intruder.publish(channel_subject("centrifugo", "chat"), b"?garbage")
    await intruder.publish(channel_subject("centrifugo", "chat"), b"p\xff\xff\xff")
    await intruder.flush()
    await intruder.close()
    await broker.publish("chat", b"{}", PLAIN)
    await broker.flush()

    assert [e.pub.data for e in handler.publications] == [b"{}"]


# History


async def test_history_is_not_supported(start_broker: BrokerFactory) -> None:
    broker, _ = await start_broker()

    assert broker.supports_history is False
    with pytest.raises(EngineError, match="history not supported"):
        await broker.history("chat", HistoryQuery(limit=-1))
    with pytest.raises(EngineError, match="history not supported"):
        await broker.remove_history("chat")


# Connection loss


async def test_commands_fail_fast_while_disconnected_and_resume_after_restart(
    server: NatsServer, start_broker: BrokerFactory
) -> None:
    sender, _ = await start_broker(**FAST_RECONNECT)
    receiver, handler = await start_broker(**FAST_RECONNECT)
    await receiver.subscribe(["before"])

    server.kill()
    await wait_until(lambda: not sender.connected and not receiver.connected)
    began = time.monotonic()
    for command in (
        sender.publish("before", b"{}", PLAIN),
        sender.publish_join("before", pb.ClientInfo()),
        receiver.subscribe(["during"]),
        receiver.flush(),
    ):
        with pytest.raises(EngineError, match="disconnected"):
            await command
    await receiver.unsubscribe(["nothing-there"])
    failing_took = time.monotonic() - began

    server.start()
    await wait_until(lambda: sender.connected and receiver.connected)
    await receiver.subscribe(["after"])
    await sender.publish("during", b'"refused, so not subscribed"', PLAIN)
    await sender.publish("before", b'"resubscribed"', PLAIN)
    await sender.publish("after", b'"subscribed"', PLAIN)
    await handler.wait_for(2)
    await sender.flush()
    await receiver.flush()

    assert failing_took < 0.5
    assert sorted((e.channel, e.pub.data) for e in handler.publications) == [
        ("after", b'"subscribed"'),
        ("before", b'"resubscribed"'),
    ]


async def test_a_broken_connection_names_every_subscribed_channel_before_anything_arrives_again(
    server: NatsServer, start_broker: BrokerFactory
) -> None:
    """NATS keeps nothing for an absent subscriber: the node learns which channels may have lost
    publications as soon as the connection breaks, so their subscribers can be told."""
    sender, _ = await start_broker(**FAST_RECONNECT)
    receiver, handler = await start_broker(**FAST_RECONNECT)
    await receiver.subscribe(["a", "b"])
    await receiver.unsubscribe(["b"])
    await receiver.subscribe(["c"])
    assert handler.interrupted == []

    server.kill()
    await wait_until(lambda: bool(handler.interrupted))
    assert handler.interrupted == [["a", "c"]]
    server.start()
    await wait_until(lambda: sender.connected and receiver.connected)
    # nats-py counts as connected once it has written the SUBs again, maybe before nats-server read
    # them; a round trip on the receiver's connection proves they were, or "after" could be lost
    await receiver.flush()
    await sender.publish("a", b'"after"', PLAIN)
    await handler.wait_for(1)
    assert handler.interrupted == [["a", "c"]]


async def test_start_fails_within_the_dial_timeout_when_nats_is_down(server: NatsServer) -> None:
    url = server.url
    server.kill()
    broker = NatsBroker(NatsOptions(url=url, dial_timeout=0.3))
    began = time.monotonic()

    with pytest.raises(EngineError, match="cannot connect"):
        await broker.start(RecordingHandler())

    assert time.monotonic() - began < 2.0
    with pytest.raises(EngineError, match="not started"):
        await broker.publish("chat", b"{}", PLAIN)


async def test_start_and_close_are_idempotent_and_close_ends_commands(server: NatsServer) -> None:
    broker = NatsBroker(NatsOptions(url=server.url))
    await broker.close()
    await broker.start(RecordingHandler())
    await broker.start(RecordingHandler())
    await broker.subscribe(["a"])
    await broker.close()
    await broker.close()

    with pytest.raises(EngineError):
        await broker.publish("a", b"{}", PLAIN)
    with pytest.raises(EngineError):
        await broker.subscribe(["a"])


async def test_a_failed_publish_does_not_use_up_its_idempotency_key(
    server: NatsServer, start_broker: BrokerFactory
) -> None:
    broker, handler = await start_broker(**FAST_RECONNECT)
    await broker.subscribe(["orders"])
    keyed = PublishOptions(idempotency_key="order-1")

    server.kill()
    await wait_until(lambda: not broker.connected)
    with pytest.raises(EngineError):
        await broker.publish("orders", b"{}", keyed)
    await asyncio.sleep(0.2)  # several reconnect attempts fail meanwhile
    server.start()
    await wait_until(lambda: broker.connected)
    retried = await broker.publish("orders", b"{}", keyed)
    await broker.flush()

    assert not retried.suppressed
    assert len(handler.publications) == 1


# Control


Inboxes = dict[str, list[bytes]]


@pytest.fixture
async def nodes(server: NatsServer) -> AsyncIterator[tuple[dict[str, NatsController], Inboxes]]:
    """Controllers of node-a and node-b on one server, each with an inbox of what reached it."""
    controllers = {
        node_id: NatsController(node_id, NatsOptions(url=server.url)) for node_id in ("node-a", "node-b")
    }
    inboxes: Inboxes = {node_id: [] for node_id in controllers}
    for node_id, controller in controllers.items():
        await controller.start(inboxes[node_id].append)
        await controller.start(inboxes[node_id].append)
    yield controllers, inboxes
    for controller in controllers.values():
        await controller.close()


async def test_control_reaches_every_node_or_the_one_named(
    nodes: tuple[dict[str, NatsController], Inboxes],
) -> None:
    controllers, inboxes = nodes
    node_a = controllers["node-a"]

    await node_a.publish_control(b"to all")
    await node_a.publish_control(b"to b", to_node="node-b")
    await node_a.publish_control(b"to a", to_node="node-a")
    await node_a.publish_control(b"to nobody", to_node="node-c")
    # NATS keeps one publisher's order per subject: once a barrier has come down the broadcast subject
    # and each node's own, a misdirected message would have arrived too.
    barriers = {b"barrier", b"barrier a", b"barrier b"}
    await node_a.publish_control(b"barrier")
    await node_a.publish_control(b"barrier a", to_node="node-a")
    await node_a.publish_control(b"barrier b", to_node="node-b")
    await wait_until(lambda: all(len(barriers & set(inbox)) == 2 for inbox in inboxes.values()))

    received = {node: [m for m in inbox if m not in barriers] for node, inbox in inboxes.items()}
    assert sorted(received["node-a"]) == [b"to a", b"to all"]
    assert sorted(received["node-b"]) == [b"to all", b"to b"]


async def test_controller_fails_fast_while_disconnected(server: NatsServer) -> None:
    controller = NatsController("node-a", NatsOptions(url=server.url, **FAST_RECONNECT))
    inbox: list[bytes] = []
    await controller.start(inbox.append)

    server.kill()
    await wait_until(lambda: not controller.connected)
    with pytest.raises(EngineError, match="disconnected"):
        await controller.publish_control(b"lost")
    server.start()
    await wait_until(lambda: controller.connected)
    await controller.publish_control(b"after", to_node="node-a")
    await wait_until(lambda: inbox == [b"after"])
    await controller.close()


# Config


def test_options_from_config_take_centrifugo_keys() -> None:
    config = NatsBrokerConfig(url="nats://n1:4222", prefix="app", dial_timeout=2.0, write_timeout=3.0)

    options = NatsOptions.from_config(config)

    assert (options.url, options.prefix, options.dial_timeout, options.write_timeout, options.tls) == (
        "nats://n1:4222",
        "app",
        2.0,
        3.0,
        None,
    )
    assert NatsBroker.from_config(config) is not None
    assert NatsController.from_config("node-a", config).node_id == "node-a"


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (NatsBrokerConfig(raw_mode=NatsRawModeConfig(enabled=True)), "raw_mode"),
        (NatsBrokerConfig(allow_wildcards=True), "allow_wildcards"),
        (NatsBrokerConfig(tls=TLSConfig(enabled=True)), "tls"),
    ],
    ids=["raw-mode", "wildcards", "tls-without-context"],
)
def test_options_from_config_refuse_what_is_not_implemented(config: NatsBrokerConfig, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        NatsOptions.from_config(config)
