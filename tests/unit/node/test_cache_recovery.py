"""Cache recovery mode: the latest publication stands for the channel's state
(https://centrifugal.dev/docs/server/cache_recovery)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers.recording import RecordingTransport, json_messages, send

from rotary.engines.base import HistoryQuery, PublishOptions
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb

KEEP_ONE = PublishOptions(history_size=1, history_ttl=300)


class CacheHooks(AllowAllHooks):
    def __init__(self, auto: bool) -> None:
        self.auto = auto

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(
            recoverable=True, positioned=True, cache_recovery=True, auto_cache_recover=self.auto
        )


async def subscribe_reply(node: Node, request: pb.SubscribeRequest) -> dict[str, object]:
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    await send(client, pb.Command(id=2, subscribe=request))
    reply = json_messages(t)[1]["subscribe"]
    assert isinstance(reply, dict)
    return reply


@pytest.mark.parametrize("auto", [False, True])
async def test_recovering_subscriber_gets_only_the_latest_publication(auto: bool) -> None:
    node = Node(NodeConfig(ping_interval=0), hooks=CacheHooks(auto))
    await node.start()
    for i in range(3):
        await node.publish("ch", b'{"v":%d}' % i, KEEP_ONE)
    reply = await subscribe_reply(node, pb.SubscribeRequest(channel="ch", recover=True))
    assert reply["recovered"] is True and reply["was_recovering"] is True
    assert [p["data"] for p in reply["publications"]] == [{"v": 2}]  # type: ignore[index, union-attr]
    await node.shutdown()


async def test_auto_cache_recover_delivers_latest_without_a_client_position() -> None:
    node = Node(NodeConfig(ping_interval=0), hooks=CacheHooks(auto=True))
    await node.start()
    await node.publish("ch", b'{"v":1}', KEEP_ONE)
    reply = await subscribe_reply(node, pb.SubscribeRequest(channel="ch"))
    assert reply["was_recovering"] is True
    assert [p["data"] for p in reply["publications"]] == [{"v": 1}]  # type: ignore[index, union-attr]
    await node.shutdown()


async def test_client_with_the_latest_state_gets_nothing_again() -> None:
    node = Node(NodeConfig(ping_interval=0), hooks=CacheHooks(auto=False))
    await node.start()
    await node.publish("ch", b'{"v":1}', KEEP_ONE)
    top = (await node.read_history("ch", HistoryQuery())).position
    reply = await subscribe_reply(
        node, pb.SubscribeRequest(channel="ch", recover=True, offset=top.offset, epoch=top.epoch)
    )
    assert reply["recovered"] is True
    assert "publications" not in reply
    await node.shutdown()


class FilteringCacheHooks(AllowAllHooks):
    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(
            recoverable=True, positioned=True, cache_recovery=True, allow_tags_filter=True
        )


async def test_cache_recovery_with_a_tags_filter_gives_the_latest_matching_publication() -> None:
    node = Node(NodeConfig(ping_interval=0), hooks=FilteringCacheHooks())
    await node.start()
    keep = PublishOptions(history_size=10, history_ttl=300)
    await node.publish("ch", b'{"v":"a1"}', replace(keep, tags={"t": "a"}))
    await node.publish("ch", b'{"v":"a2"}', replace(keep, tags={"t": "a"}))
    await node.publish("ch", b'{"v":"b"}', replace(keep, tags={"t": "b"}))
    only_a = pb.FilterNode(key="t", cmp="eq", val="a")
    reply = await subscribe_reply(node, pb.SubscribeRequest(channel="ch", recover=True, tf=only_a))
    assert reply["recovered"] is True
    assert [p["data"] for p in reply["publications"]] == [{"v": "a2"}]  # type: ignore[index, union-attr]
    await node.shutdown()
