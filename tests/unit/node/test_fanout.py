"""Fan-out through the hub with real Node, memory engine and recording transports: one prepared
frame per encoding group, the same bytes object for every subscriber in it."""

from __future__ import annotations

import asyncio

from helpers.recording import RecordingTransport, connected, frame_payload, json_messages

from rotary.engines.base import PublishOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType


async def test_one_frame_object_per_encoding_group() -> None:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    json_transports = [RecordingTransport() for _ in range(3)]
    pb_transports = [RecordingTransport(ProtocolType.PROTOBUF) for _ in range(2)]
    for t in json_transports + pb_transports:
        await connected(node, t, "news")
    await node.publish("news", b'{"a":1}', PublishOptions())
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    json_frames = [t.frames[0] for t in json_transports]
    pb_frames = [t.frames[0] for t in pb_transports]
    assert all(f is json_frames[0] for f in json_frames)
    assert all(f is pb_frames[0] for f in pb_frames)
    assert json_frames[0].startswith(b"\x81")
    # No "time": Centrifugo keeps a publication's time to itself (it never reaches clients).
    assert json_frames[0][2:] == b'{"push":{"channel":"news","pub":{"data":{"a":1}}}}'
    await node.shutdown()


async def test_slow_client_is_closed_with_3008_after_the_walk() -> None:
    node = Node(NodeConfig(ping_interval=0, queue_max_size=10))
    await node.start()
    slow = RecordingTransport(limit_buffered=11)
    fast = RecordingTransport()
    await connected(node, slow, "news")
    await connected(node, fast, "news")
    await node.publish("news", b'{"a":1}', PublishOptions())
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    assert slow.closed_with is None
    await asyncio.sleep(0)
    assert slow.closed_with == codes.DISCONNECT_SLOW
    assert fast.closed_with is None and len(fast.frames) == 1
    await node.shutdown()


async def test_unsubscribed_client_receives_nothing_and_channel_is_released() -> None:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    t = RecordingTransport()
    client = await connected(node, t, "news")
    await client.handle_frame(b'{"id":3,"unsubscribe":{"channel":"news"}}')
    t.frames.clear()
    await node.publish("news", b'{"a":1}', PublishOptions())
    await asyncio.sleep(0)  # fan-out happens at the end of the loop pass
    assert t.frames == []
    assert node.channels() == {}
    await node.shutdown()


async def test_shutdown_closes_every_client_with_3001() -> None:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    transports = [RecordingTransport() for _ in range(5)]
    for t in transports:
        await connected(node, t, "news")
    await node.shutdown()
    assert all(t.closed_with == codes.DISCONNECT_SHUTDOWN for t in transports)
    assert node.info().num_clients == 0


async def test_publications_of_one_loop_pass_share_one_frame_per_group() -> None:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    transports = [RecordingTransport() for _ in range(3)]
    for t in transports:
        await connected(node, t, "news")
    for i in range(4):
        await node.publish("news", b'{"i":%d}' % i, PublishOptions())
    await asyncio.sleep(0)
    assert all(len(t.frames) == 1 for t in transports)
    frame = transports[0].frames[0]
    assert all(t.frames[0] is frame for t in transports)
    payload = frame_payload(frame)
    assert [line.split(b'"pub":{"data":')[1][:7] for line in payload.split(b"\n")] == [
        b'{"i":0}',
        b'{"i":1}',
        b'{"i":2}',
        b'{"i":3}',
    ]
    await node.shutdown()


async def test_positioned_subscriber_in_a_burst_gets_only_what_it_has_not_seen() -> None:
    from rotary.node.default_hooks import AllowAllHooks
    from rotary.node.hooks import ClientView, SubscribeOptions
    from rotary.protocol import pb

    class Positioned(AllowAllHooks):
        async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
            return SubscribeOptions(positioned=True)

    history = PublishOptions(history_size=10, history_ttl=60)
    node = Node(NodeConfig(ping_interval=0), hooks=Positioned())
    await node.start()
    t = RecordingTransport()
    client = await connected(node, t, "news")
    for i in range(3):
        await node.publish("news", b'{"i":%d}' % i, history)
    client.channels["news"].offset = 1
    await asyncio.sleep(0)
    offsets = [m["push"]["pub"]["offset"] for m in json_messages(t)]  # type: ignore[index]
    assert offsets == [2, 3]
    await node.shutdown()
