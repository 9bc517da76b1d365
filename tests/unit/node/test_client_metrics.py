"""What a connection adds to the metrics: the ping/pong round trip by transport.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import asyncio

from helpers.recording import RecordingTransport, connected, frame_payload

from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeConfig

WAIT = 5.0


async def test_pong_observes_the_ping_pong_duration() -> None:
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0.01, pong_timeout=5), metrics=metrics)
    await node.start()
    transport = RecordingTransport()
    client = await connected(node, transport, "news")
    async with asyncio.timeout(WAIT):
        while not any(frame_payload(f) == b"{}" for f in transport.frames):
            await asyncio.sleep(0.01)  # the node's ping timer, a real one
    await client.handle_frame(b"{}")
    histogram = metrics.ping_pongs["websocket"]
    assert histogram.count == 1 and 0 <= histogram.sum < WAIT
    await node.shutdown()
