"""The periodic position check tells a positioned subscriber that fell behind without a later
publication revealing the gap, but not one that merely races an in-flight publication."""

from __future__ import annotations

import asyncio

from helpers.recording import RecordingTransport, json_messages, send

from rotary.engines.base import PublishOptions
from rotary.engines.memory import MemoryBroker
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.node.upkeep import PositionCheck
from rotary.protocol import pb

HISTORY = PublishOptions(history_size=10, history_ttl=60)


class Positioned(AllowAllHooks):
    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(positioned=True)


async def positioned_client(node: Node) -> tuple[Client, RecordingTransport]:
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch")))
    return client, t


async def test_subscriber_behind_at_two_checks_is_unsubscribed_with_2500() -> None:
    broker = MemoryBroker()
    node = Node(NodeConfig(ping_interval=0, position_check_interval=0), hooks=Positioned(), broker=broker)
    await node.start()
    client, t = await positioned_client(node)
    await broker.unsubscribe(["ch"])
    await node.publish("ch", b"{}", HISTORY)
    check = PositionCheck(node)
    await check.check()
    assert client.is_subscribed("ch")
    await check.check()
    await asyncio.sleep(0)
    assert not client.is_subscribed("ch")
    assert json_messages(t)[-1]["push"]["unsubscribe"]["code"] == 2500  # type: ignore[index]
    await node.shutdown()


async def test_subscriber_that_caught_up_between_checks_stays() -> None:
    node = Node(NodeConfig(ping_interval=0, position_check_interval=0), hooks=Positioned())
    await node.start()
    client, _ = await positioned_client(node)
    state = client.channels["ch"]
    await node.publish("ch", b"{}", HISTORY)
    state.offset = 0
    check = PositionCheck(node)
    await check.check()
    state.offset = 1
    await check.check()
    assert client.is_subscribed("ch")
    await node.shutdown()
