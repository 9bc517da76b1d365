"""A broker without history (NATS) that lost its connection names the channels whose publications
may be gone; the node tells each of their subscribers that no position vouches for (unsubscribe 2500,
or 3010 for a server-side subscription), and leaves positioned ones and other channels alone."""

from __future__ import annotations

import asyncio

from helpers.recording import RecordingTransport, json_messages, send

from rotary.node.client import Client
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView, ConnectDecision, ConnectionInfo, SubscribeOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import pb


class Hooks(AllowAllHooks):
    """``pos:`` channels are positioned; the user ``server`` gets a server-side subscription."""

    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        if request.name == "server":
            return ConnectDecision(user="server", subscriptions={"news": SubscribeOptions()})
        return ConnectDecision(user="")

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(positioned=request.channel.startswith("pos:"))


async def subscriber(node: Node, channel: str, name: str = "") -> tuple[Client, RecordingTransport]:
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest(name=name)))
    if channel:
        await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel=channel)))
    return client, t


async def test_interruption_tells_unpositioned_subscribers_of_the_named_channels() -> None:
    node = Node(NodeConfig(ping_interval=0, position_check_interval=0), hooks=Hooks())
    await node.start()
    plain, plain_t = await subscriber(node, "news")
    positioned, _ = await subscriber(node, "pos:news")
    elsewhere, _ = await subscriber(node, "other")
    server_side, server_side_t = await subscriber(node, "", name="server")
    assert server_side.is_subscribed("news")

    node.handle_interrupted(["news", "pos:news"])
    await asyncio.sleep(0)

    assert not plain.is_subscribed("news")
    assert json_messages(plain_t)[-1]["push"]["unsubscribe"]["code"] == 2500  # type: ignore[index]
    assert server_side.closed and server_side_t.closed_with is not None
    assert server_side_t.closed_with.code == 3010
    assert positioned.is_subscribed("pos:news")
    assert elsewhere.is_subscribed("other")
    assert not plain.closed
    await node.shutdown()
