"""The public library API under the official centrifuge-python SDK: a ``rotary.Node`` with Python
hooks, served by rotary's own WebSocket transport on a real socket (the mounts take the same Node).
The SDK connects with the application's token, subscribes, gets publications, recovers what it
missed, and sees the hooks' errors and data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from helpers.env import free_port

import rotary
from rotary import ChannelOptions, ConnectingEvent, ConnectReply, Node, RPCEvent, SubscribeEvent
from rotary.transports.websocket import websocket_handler

pytestmark = pytest.mark.compat


@dataclass
class Served:
    node: Node
    ws_url: str


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    node = Node(channel_options=ChannelOptions(history_size=10, history_ttl=300, presence=True))

    @node.on_connecting
    async def connecting(event: ConnectingEvent) -> ConnectReply:
        if not event.token.startswith("user:"):
            raise rotary.Disconnect(4501, "unknown token")
        return ConnectReply(user=event.token.removeprefix("user:"), data={"welcome": True})

    @node.on_subscribe
    async def subscribe(event: SubscribeEvent) -> None:
        if event.channel.startswith("admin"):
            raise rotary.PermissionDenied()

    @node.on_rpc
    async def rpc(event: RPCEvent) -> object:
        return {"echo": event.data, "user": event.user}

    app = web.Application()
    app.router.add_get("/connection/websocket", websocket_handler(node))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await node.start()
    try:
        yield Served(node, f"ws://127.0.0.1:{port}/connection/websocket")
    finally:
        await node.shutdown()
        await runner.cleanup()


async def test_sdk_connects_subscribes_and_receives(served: Served, sdk_clients: Any) -> None:
    sdk = sdk_clients(served, token="user:anna")
    await sdk.client.connect()
    connected = await sdk.events.next("on_connected")
    assert connected.data == {"welcome": True}
    sub, events = sdk.subscription("chat")
    await sub.subscribe()
    await sub.ready(timeout=5)
    await served.node.publish("chat", {"text": "hi"})
    assert (await events.next("on_publication")).pub.data == {"text": "hi"}
    result = await sdk.client.rpc("ping", {"n": 1})
    assert result.data == {"echo": {"n": 1}, "user": "anna"}
    presence = await sub.presence()
    assert [info.user for info in presence.clients.values()] == ["anna"]


async def test_sdk_sees_the_hooks_refusals(served: Served, sdk_clients: Any) -> None:
    sdk = sdk_clients(served, token="user:bob")
    await sdk.client.connect()
    await sdk.client.ready(timeout=5)
    sub, events = sdk.subscription("admin:panel")
    await sub.subscribe()
    assert (await events.next("on_unsubscribed")).code == 103  # the SDK gives up on a permanent error


async def test_sdk_refused_by_on_connecting_with_the_apps_code(served: Served, sdk_clients: Any) -> None:
    sdk = sdk_clients(served, token="stranger")
    await sdk.client.connect()
    assert (await sdk.events.next("on_disconnected")).code == 4501
