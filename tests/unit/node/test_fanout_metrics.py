"""What the fan-out adds to the metrics: one count per delivered publication and its encoded bytes,
added per group, exact when some subscribers of a group are skipped or get part of a burst.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import asyncio

from helpers.recording import RecordingTransport, connected, frame_payload

from rotary.engines.base import PublishOptions
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb
from rotary.protocol.codec import ProtocolType
from rotary.protocol.tags_filter import compile_filter

PUSH = ("websocket", "push_publication")
HISTORY = PublishOptions(history_size=10, history_ttl=60)


class Positioned(AllowAllHooks):
    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(positioned=True)


async def test_one_publication_counts_every_subscriber_of_every_group() -> None:
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0), metrics=metrics)
    await node.start()
    transports = [RecordingTransport() for _ in range(3)]
    pb_transports = [RecordingTransport(ProtocolType.PROTOBUF) for _ in range(2)]
    for t in transports + pb_transports:
        await connected(node, t, "news")
    before = {t: len(t.frames) for t in transports + pb_transports}
    sent_before = list(metrics.sent.get(PUSH, [0, 0]))
    await node.publish("news", b'{"a":1}', PublishOptions())
    await asyncio.sleep(0)
    count, size = (a - b for a, b in zip(metrics.sent[PUSH], sent_before, strict=True))
    assert count == 5
    delivered = [t.frames[before[t] :] for t in transports + pb_transports]
    assert size == sum(len(frame_payload(f)) for frames in delivered for f in frames)
    assert metrics.broadcasts.count == 1
    assert metrics.broker_sent[("publication",)] == metrics.broker_received[("publication",)] == 1
    await node.shutdown()


async def test_skipped_subscribers_and_partial_bursts_are_not_counted() -> None:
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0), hooks=Positioned(), metrics=metrics)
    await node.start()
    transports = [RecordingTransport() for _ in range(3)]
    clients = [await connected(node, t, "news") for t in transports]
    start = list(metrics.sent.get(PUSH, [0, 0]))

    await node.publish("news", b'{"i":0}', HISTORY)
    clients[0].channels["news"].offset = 1  # has seen offset 1 already: skipped
    await asyncio.sleep(0)
    assert metrics.sent[PUSH][0] - start[0] == 2

    for i in range(1, 4):
        await node.publish("news", b'{"i":%d}' % i, HISTORY)
    clients[1].channels["news"].offset = 2  # gets offsets 3 and 4 of the burst 2..4
    await asyncio.sleep(0)
    assert metrics.sent[PUSH][0] - start[0] == 2 + 3 + 2 + 3
    # Bytes: each message as written, without the newlines that join a batch (framing, as
    # Centrifugo counts it).
    assert metrics.sent[PUSH][1] - start[1] == sum(
        len(line)
        for t in transports
        for f in t.frames
        for line in frame_payload(f).split(b"\n")
        if b'"pub"' in line
    )
    await node.shutdown()


async def test_nothing_is_counted_without_metrics() -> None:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    t = RecordingTransport()
    await connected(node, t, "news")
    await node.publish("news", b"{}", PublishOptions())
    await asyncio.sleep(0)
    assert node.metrics is None and len(t.frames) >= 1
    await node.shutdown()


async def test_publications_a_tags_filter_drops_are_counted_once_per_publication_and_subscriber() -> None:
    metrics = Metrics()
    node = Node(NodeConfig(ping_interval=0), metrics=metrics)
    await node.start()
    transports = [RecordingTransport() for _ in range(3)]
    clients = [await connected(node, t, "news") for t in transports]
    wants_a = compile_filter(pb.FilterNode(key="kind", cmp="eq", val="a"))
    for client in clients[:2]:
        client.channels["news"].tags_filter = wants_a
    start = list(metrics.sent.get(PUSH, [0, 0]))

    await node.publish("news", b'{"i":0}', PublishOptions(tags={"kind": "b"}))
    await asyncio.sleep(0)
    assert metrics.tags_filter_dropped == 2
    assert metrics.sent[PUSH][0] - start[0] == 1

    for kind in ("a", "b", "b"):  # one burst: the filtered subscribers take one of three
        await node.publish("news", b"{}", PublishOptions(tags={"kind": kind}))
    await asyncio.sleep(0)
    assert metrics.tags_filter_dropped == 2 + 2 * 2
    assert metrics.sent[PUSH][0] - start[0] == 1 + 3 + 2 * 1
    await node.shutdown()
