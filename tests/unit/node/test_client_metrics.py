"""What a connection adds to the metrics: the ping/pong round trip by transport, and every push it
is sent (not only publications) by frame type, as centrifuge counts each message its writer sends.
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
    pings = metrics.sent[("websocket", "server_ping")]
    assert pings[0] >= 1 and pings[1] == pings[0] * len(b"{}")
    await node.shutdown()


async def test_pushes_other_than_publications_count_by_frame_type_and_size() -> None:
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0), metrics=metrics)
    await node.start()
    transport = RecordingTransport()
    client = await connected(node, transport, "news")
    subscribed = list(metrics.sent[("websocket", "subscribe")])

    await node.subscribe("", "sport", client_id=client.id)
    await node.unsubscribe("", "news", client_id=client.id)
    pushes = [frame_payload(f) for f in transport.frames]
    assert len(pushes) == 2 and b'"subscribe"' in pushes[0] and b'"unsubscribe"' in pushes[1]
    assert metrics.sent[("websocket", "push_subscribe")] == [1, len(pushes[0])]
    assert metrics.sent[("websocket", "push_unsubscribe")] == [1, len(pushes[1])]
    # A push is not part of any reply's size.
    assert metrics.sent[("websocket", "subscribe")] == subscribed
    await node.shutdown()
