"""Control messages count as Centrifugo counts them: every message the node publishes on its control
channel and every one it receives, a lone node's own node info included (Centrifugo's memory broker
hands a node its own control messages, so a single node shows control counts moving too).
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

from rotary.engines.memory_controller import MemoryController
from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeConfig

CONTROL = ("control",)


async def test_a_lone_node_counts_its_node_info_sent_and_received() -> None:
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0), controller=MemoryController("n1"), metrics=metrics)
    await node.start()  # announces itself once at start
    assert metrics.broker_sent[CONTROL] == metrics.broker_received[CONTROL] == 1
    await node.disconnect("someone")  # a command for every node goes round the control channel too
    assert metrics.broker_sent[CONTROL] == metrics.broker_received[CONTROL] == 2
    assert [info.uid for info in await node.cluster_info()] == ["n1"]
    await node.shutdown()
