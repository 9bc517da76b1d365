"""Nothing accepted is lost when a subscription ends: every publication the node accepted for a channel
before one of its subscriptions ends reaches that subscriber before the `unsubscribe` push or the
close, whichever way the subscription ends (client unsubscribe, server unsubscribe, disconnect,
expiry, insufficient state, slow client, shutdown). Real Node, memory engine, recording transports."""

from __future__ import annotations

import asyncio

from helpers.recording import RecordingTransport, connected, json_messages, send

from rotary.engines.base import HistoryQuery, HistoryResult, PublishOptions
from rotary.engines.memory import MemoryBroker
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes, pb
from rotary.protocol.tags_filter import TagsMatcher


async def _node(**config: object) -> Node:
    node = Node(NodeConfig(ping_interval=0, **config))  # type: ignore[arg-type]
    await node.start()
    return node


def _kinds(transport: RecordingTransport) -> list[str]:
    """'pub', 'unsubscribe', ... for each push, 'reply' for each reply, in arrival order."""
    out = []
    for message in json_messages(transport):
        push = message.get("push")
        out.append(next(iter(k for k in push if k != "channel")) if isinstance(push, dict) else "reply")
    return out


async def test_server_unsubscribe_delivers_the_publication_first() -> None:
    node = await _node()
    t = RecordingTransport()
    client = await connected(node, t, "news")
    client.user = ""
    await node.publish("news", b'{"n":1}', PublishOptions())
    await node.unsubscribe("", "news", client_id=client.id)
    await asyncio.sleep(0)
    assert _kinds(t) == ["pub", "unsubscribe"]
    await node.shutdown()


async def test_client_unsubscribe_in_the_same_pass_gets_the_publication_first() -> None:
    node = await _node()
    t = RecordingTransport()
    client = await connected(node, t, "news")
    await node.publish("news", b'{"n":1}', PublishOptions())
    await send(client, pb.Command(id=5, unsubscribe=pb.UnsubscribeRequest(channel="news")))
    await asyncio.sleep(0)
    assert _kinds(t) == ["pub", "reply"]
    await node.shutdown()


async def test_disconnect_delivers_the_publication_before_the_close() -> None:
    node = await _node()
    t = RecordingTransport()
    client = await connected(node, t, "news")
    await node.publish("news", b'{"n":1}', PublishOptions())
    await node.disconnect("", client_id=client.id)
    assert _kinds(t) == ["pub"]
    assert t.closed_with == codes.DISCONNECT_FORCE_NO_RECONNECT
    await node.shutdown()


async def test_shutdown_delivers_the_publication_before_the_close() -> None:
    node = await _node()
    t = RecordingTransport()
    await connected(node, t, "news")
    await node.publish("news", b'{"n":1}', PublishOptions())
    await node.shutdown()
    assert _kinds(t) == ["pub"]
    assert t.closed_with == codes.DISCONNECT_SHUTDOWN


async def test_insufficient_state_is_told_after_what_was_accepted_before() -> None:
    node = await _node()
    t = RecordingTransport()
    client = await connected(node, t, "news")
    await node.publish("news", b'{"n":1}', PublishOptions())
    client.insufficient_state("news")
    await asyncio.sleep(0)
    assert _kinds(t) == ["pub", "unsubscribe"]
    await node.shutdown()


async def test_expired_subscription_gets_the_publication_before_2501() -> None:
    node = await _node()
    t = RecordingTransport()
    client = await connected(node, t, "news")
    await node.publish("news", b'{"n":1}', PublishOptions())
    client.session.expired_channels.append("news")
    client.channels["news"].expire_at = 1
    client._end_expired_subscriptions()
    await asyncio.sleep(0)
    assert _kinds(t) == ["pub", "unsubscribe"]
    assert json_messages(t)[-1]["push"]["unsubscribe"]["code"] == 2501  # type: ignore[index]
    await node.shutdown()


async def test_slow_subscriber_closed_after_the_publications_it_was_given() -> None:
    node = await _node(queue_max_size=10)
    slow = RecordingTransport(limit_buffered=11)
    await connected(node, slow, "news")
    await node.publish("news", b'{"n":1}', PublishOptions())
    await node.publish("other", b'{"n":2}', PublishOptions())
    for _ in range(3):
        await asyncio.sleep(0)
    assert _kinds(slow) == ["pub"]
    assert slow.closed_with == codes.DISCONNECT_SLOW
    await node.shutdown()


async def test_one_failing_subscriber_does_not_stop_delivery_to_others() -> None:
    node = await _node()
    broken, fine, elsewhere = RecordingTransport(), RecordingTransport(), RecordingTransport()
    bad = await connected(node, broken, "news")
    await connected(node, fine, "news")
    await connected(node, elsewhere, "sport")

    def explode(tags: object) -> bool:
        raise RecursionError("a filter that cannot be matched")

    matcher: TagsMatcher = explode
    bad.channels["news"].tags_filter = matcher
    await node.publish("news", b'{"n":1}', PublishOptions())
    await node.publish("sport", b'{"n":2}', PublishOptions())
    for _ in range(3):
        await asyncio.sleep(0)
    assert _kinds(fine) == ["pub"]
    assert _kinds(elsewhere) == ["pub"]
    # The subscriber whose delivery failed is told: its subscription ends with 2500.
    assert _kinds(broken) == ["unsubscribe"]
    assert json_messages(broken)[0]["push"]["unsubscribe"]["code"] == 2500  # type: ignore[index]
    await node.shutdown()


class _PausedHistory(MemoryBroker):
    """Holds history reads until the test lets them go, so a subscribe can be caught in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.go_on = asyncio.Event()

    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        self.reading.set()
        await self.go_on.wait()
        return await super().history(channel, query)


class _Positioned(AllowAllHooks):
    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(positioned=True, recoverable=True)


async def test_server_unsubscribe_during_a_subscribe_ends_it_right_after_its_reply() -> None:
    """As centrifuge waits for a subscribe in progress: the subscribe succeeds, then it ends."""
    broker = _PausedHistory()
    node = Node(NodeConfig(ping_interval=0), hooks=_Positioned(), broker=broker)
    await node.start()
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    subscribing = asyncio.ensure_future(
        send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="news")))
    )
    await broker.reading.wait()
    await node.unsubscribe("", "news", client_id=client.id)
    broker.go_on.set()
    await subscribing
    await asyncio.sleep(0)
    assert _kinds(t) == ["reply", "reply", "unsubscribe"]
    assert "subscribe" in json_messages(t)[1]
    assert not client.is_subscribed("news") and node.channels() == {}
    await node.shutdown()
