"""Publications that arrive while a subscribe with recovery is in flight are delivered exactly once,
in order: those the history read already contains are not repeated, and those after it follow the
subscribe reply."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from helpers.recording import RecordingTransport, json_messages, send

from rotary.engines.base import HistoryQuery, HistoryResult, PublishOptions
from rotary.engines.memory import MemoryBroker
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb

HISTORY = PublishOptions(history_size=100, history_ttl=300)


class RacingBroker(MemoryBroker):
    """Publishes while the node reads history: some before the read, some after it."""

    def __init__(self) -> None:
        super().__init__()
        self.inject: tuple[int, int] | None = None

    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        if self.inject is None:
            return await super().history(channel, query)
        before, after = self.inject
        self.inject = None
        for i in range(before):
            await self.publish(channel, orjson.dumps({"before": i}), HISTORY)
        result = await super().history(channel, query)
        for i in range(after):
            await self.publish(channel, orjson.dumps({"after": i}), HISTORY)
        return result


class RecoveringHooks(AllowAllHooks):
    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(recoverable=True, positioned=True)


@pytest.mark.parametrize(("recover", "before", "after"), [(True, 3, 3), (True, 0, 5), (False, 4, 2)])
async def test_publications_during_subscribe_arrive_once_in_order(
    recover: bool, before: int, after: int
) -> None:
    broker = RacingBroker()
    node = Node(NodeConfig(ping_interval=0), hooks=RecoveringHooks(), broker=broker)
    await node.start()
    for i in range(5):
        await node.publish("ch", orjson.dumps({"old": i}), HISTORY)
        await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    epoch = (await node.read_history("ch", HistoryQuery())).position.epoch
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    broker.inject = (before, after)
    request = pb.SubscribeRequest(channel="ch", recover=recover, offset=2, epoch=epoch)
    await send(client, pb.Command(id=2, subscribe=request))
    await node.publish("ch", b'{"late":1}', HISTORY)
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass

    messages = json_messages(t)[1:]
    reply = messages[0]["subscribe"]
    offsets = [p["offset"] for p in reply.get("publications", [])]
    offsets += [m["push"]["pub"]["offset"] for m in messages[1:]]
    top = 5 + before + after + 1
    first = 3 if recover else 6 + before
    assert reply.get("recovered", False) is recover
    assert offsets == list(range(first, top + 1))
    await node.shutdown()


class RestartingBroker(MemoryBroker):
    """While the node reads history, two publications go out on the stream's first epoch, then the
    stream is lost and starts over with a new epoch (as when Redis restarts empty): the read sees
    the new stream at offset 0, the subscriber's buffer holds offsets 1 and 2 of the old one."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(history_meta_ttl=10.0, clock=lambda: self.now)
        self.restart_during_read = False

    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        if self.restart_during_read:
            self.restart_during_read = False
            for i in range(2):
                await self.publish(channel, orjson.dumps({"old epoch": i}), HISTORY)
            await asyncio.sleep(0)  # the hub's pass ends: the subscriber buffers them
            self.now += 60.0  # the stream's meta lapses: the next touch starts a new epoch
        return await super().history(channel, query)


async def test_publications_buffered_from_another_epoch_do_not_advance_the_new_position() -> None:
    broker = RestartingBroker()
    node = Node(NodeConfig(ping_interval=0), hooks=RecoveringHooks(), broker=broker)
    await node.start()
    try:
        t = RecordingTransport()
        client = Client(node, t)
        await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
        broker.restart_during_read = True
        await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch")))
        for i in range(2):
            await node.publish("ch", orjson.dumps({"new epoch": i}), HISTORY)
            await asyncio.sleep(0)  # fan-out happens at the end of the loop pass

        messages = json_messages(t)[1:]
        new_epoch = [m["push"]["pub"]["data"] for m in messages if "push" in m and "pub" in m["push"]]
        told = t.closed_with is not None or any("unsubscribe" in m.get("push", {}) for m in messages)
        assert told or new_epoch[-2:] == [{"new epoch": 0}, {"new epoch": 1}], (
            f"the new epoch's publications were skipped untold: {messages}"
        )
    finally:
        await node.shutdown()
