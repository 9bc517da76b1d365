"""The node's engine subscription of a channel is changed by one task at a time, whatever fails.

A subscribe to the engine can wait long (Redis paused) and then fail; meanwhile other subscribers
of the channel queue behind it. If two of them ever ran at once, one could record the channel as
subscribed while the engine had given it up, and the node's subscribers would get nothing without
being told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from helpers.recording import RecordingTransport, send

from rotary.engines.base import EngineError
from rotary.engines.memory import MemoryBroker
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb


class GatedBroker(MemoryBroker):
    """A memory broker whose subscribe waits for the test, counting how many wait at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[asyncio.Future[None]] = []
        self.inside = 0
        self.most_inside = 0
        self.after_failure: list[asyncio.Task[None]] = []
        self.node: Node | None = None

    async def subscribe(self, channels: Sequence[str]) -> None:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        gate = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        try:
            await gate
        except EngineError:
            # Another sync of the channel starts at once, as a client's retry would: before the
            # failed one has let go of the channel's turn.
            assert self.node is not None
            self.after_failure.append(asyncio.create_task(self.node.sync_broker_subscription(channels[0])))
            raise
        finally:
            self.inside -= 1
        await super().subscribe(channels)


async def subscribing(node: Node) -> asyncio.Task[None]:
    client = Client(node, RecordingTransport())
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    return asyncio.create_task(send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch"))))


async def settle(broker: GatedBroker, count: int) -> None:
    for _ in range(100):
        if len(broker.gates) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{count} engine subscribes expected, {len(broker.gates)} came")


async def test_a_failed_engine_subscribe_does_not_let_two_syncs_of_a_channel_run_at_once() -> None:
    broker = GatedBroker()
    node = Node(NodeConfig(ping_interval=0), hooks=AllowAllHooks(), broker=broker)
    broker.node = node
    await node.start()
    try:
        first = await subscribing(node)
        await settle(broker, 1)  # the first subscriber's sync waits in the engine
        second = await subscribing(node)
        for _ in range(5):
            await asyncio.sleep(0)  # the second subscriber's sync queues behind it

        broker.gates[0].set_exception(EngineError("subscribe not confirmed in time"))
        await settle(broker, 2)
        for _ in range(5):
            await asyncio.sleep(0)
        assert broker.most_inside == 1, "two syncs of one channel subscribed to the engine at once"

        tasks = [first, second, *broker.after_failure]
        while not all(task.done() for task in tasks):
            for gate in broker.gates:
                if not gate.done():
                    gate.set_result(None)
            await asyncio.sleep(0)
        await asyncio.gather(first, second, *broker.after_failure)
        assert broker.most_inside == 1
        assert node.hub.has_subscribers("ch")
        assert "ch" in broker._subscribed, "the node has subscribers but the engine does not hold the channel"
    finally:
        for gate in broker.gates:
            if not gate.done():
                gate.set_result(None)
        await node.shutdown()
