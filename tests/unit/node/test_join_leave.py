"""Join and leave are announced only for subscriptions that became live."""

from __future__ import annotations

from helpers.recording import RecordingTransport, json_messages, send, settled

from rotary.engines.base import HistoryQuery
from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb


class JoinLeaveHooks(AllowAllHooks):
    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(
            emit_join_leave=True,
            push_join_leave=True,
            recoverable=True,
            positioned=True,
            reject_unrecovered=bool(request.flag & 2),
        )


async def watcher_and_node() -> tuple[Node, RecordingTransport]:
    node = Node(NodeConfig(ping_interval=0), hooks=JoinLeaveHooks())
    await node.start()
    watcher = RecordingTransport()
    client = Client(node, watcher)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest()))
    await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch")))
    return node, watcher


def pushes(t: RecordingTransport, kind: str) -> list[object]:
    return [m for m in json_messages(t) if kind in m.get("push", {})]  # type: ignore[operator]


async def test_live_subscription_announces_join_and_leave() -> None:
    node, watcher = await watcher_and_node()
    other = Client(node, RecordingTransport())
    await send(other, pb.Command(id=1, connect=pb.ConnectRequest()))
    await send(other, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="ch")))
    await send(other, pb.Command(id=3, unsubscribe=pb.UnsubscribeRequest(channel="ch")))
    await settled(node)
    assert len(pushes(watcher, "join")) == 2 and len(pushes(watcher, "leave")) == 1
    await node.shutdown()


async def test_failed_subscribe_announces_neither_join_nor_leave() -> None:
    node, watcher = await watcher_and_node()
    epoch = (await node.read_history("ch", HistoryQuery())).position.epoch
    other_t = RecordingTransport()
    other = Client(node, other_t)
    await send(other, pb.Command(id=1, connect=pb.ConnectRequest()))
    stale = pb.SubscribeRequest(channel="ch", recover=True, offset=5, epoch=epoch + "x", flag=2)
    await send(other, pb.Command(id=2, subscribe=stale))
    await settled(node)
    assert json_messages(other_t)[1]["error"]["code"] == 112  # type: ignore[index]
    assert len(pushes(watcher, "join")) == 1 and pushes(watcher, "leave") == []
    await node.shutdown()
