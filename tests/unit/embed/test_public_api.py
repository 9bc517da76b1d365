"""The public library API end to end: a Node with Python hooks, driven by rotary.testing.TestClient
speaking the real client protocol (JSON and Protobuf) through an in-memory transport."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

import rotary
from rotary import (
    ChannelOptions,
    ConnectEvent,
    ConnectingEvent,
    ConnectReply,
    DisconnectEvent,
    Node,
    PublishEvent,
    PublishReply,
    RefreshEvent,
    RefreshReply,
    RPCEvent,
    SubscribeEvent,
    SubscribeReply,
)
from rotary.testing import TestClient, settled

CHAT = ChannelOptions(presence=True, join_leave=True, history_size=10, history_ttl=60)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with Node(
        channel_options=lambda channel: CHAT if channel.startswith("chat") else ChannelOptions()
    ) as n:

        @n.on_connecting
        async def connecting(event: ConnectingEvent) -> ConnectReply:
            if event.token != "good":
                raise rotary.Disconnect(4501, "who are you")
            return ConnectReply(
                user=event.headers.get("x-user", "anna"), info={"name": "Anna"}, data={"hi": 1}
            )

        @n.on_subscribe
        async def subscribe(event: SubscribeEvent) -> SubscribeReply | None:
            if event.channel == "secret":
                raise rotary.PermissionDenied()
            return SubscribeReply(info={"role": "member"}) if event.channel.startswith("chat") else None

        yield n


async def test_connect_refused_by_the_hook_closes_with_its_code(node: Node) -> None:
    with pytest.raises(rotary.Disconnect) as refused:
        async with TestClient(node, token="bad"):
            pass
    assert (refused.value.code, refused.value.reason) == (4501, "who are you")
    assert not node._connections  # nothing left open on the node


async def test_a_refused_connect_error_leaves_nothing_open(node: Node) -> None:
    @node.on_connecting
    async def connecting(event: ConnectingEvent) -> ConnectReply:
        raise rotary.TokenExpired()

    with pytest.raises(rotary.TokenExpired):
        await TestClient(node, token="old").connect()
    assert not node._connections


async def test_without_on_connecting_connections_are_refused_unless_insecure() -> None:
    async with Node() as strict:
        with pytest.raises(rotary.Disconnect) as refused:
            await TestClient(strict).connect()
        assert refused.value.code == 3501
    async with Node(insecure=True) as open_node, TestClient(open_node) as client:
        await client.subscribe("news")
        await client.publish("news", {"a": 1})
        assert (await client.next_publication("news")).json() == {"a": 1}


async def test_connecting_event_carries_headers_cookies_and_decoded_data(node: Node) -> None:
    seen: list[ConnectingEvent] = []
    original = node._hook_set.connecting
    assert original is not None

    @node.on_connecting
    async def connecting(event: ConnectingEvent) -> ConnectReply:
        seen.append(event)
        return await original(event)

    headers = {"Cookie": "session=abc; theme=dark", "X-User": "bob"}
    async with TestClient(node, token="good", data={"v": 2}, headers=headers, name="js") as client:
        pass
    event = seen[0]
    assert event.cookies == {"session": "abc", "theme": "dark"}
    assert event.data == {"v": 2} and event.name == "js" and event.transport == "websocket"
    assert event.client_id == client.client_id and event.protocol == "json"


async def test_connect_reply_data_and_server_side_channels(node: Node) -> None:
    @node.on_connecting
    async def connecting(event: ConnectingEvent) -> ConnectReply:
        return ConnectReply(user="u1", data={"welcome": True}, channels=["chat:lobby"])

    async with TestClient(node) as client:
        await node.publish("chat:lobby", {"text": "hello"})
        assert (await client.next_publication("chat:lobby")).json() == {"text": "hello"}


async def test_subscribe_hook_denies_with_its_code(node: Node) -> None:
    async with TestClient(node, token="good") as client:
        with pytest.raises(rotary.ClientError) as denied:
            await client.subscribe("secret")
        assert denied.value.code == 103


async def test_publish_is_denied_without_on_publish_and_rewritten_by_it(node: Node) -> None:
    async with TestClient(node, token="good") as client:
        await client.subscribe("chat:1")
        with pytest.raises(rotary.PermissionDenied) as denied:
            await client.publish("chat:1", {"text": "hi"})
        assert denied.value.code == 103

        @node.on_publish
        async def publish(event: PublishEvent) -> PublishReply:
            assert event.data == {"text": "hi"} and event.user == "anna"
            return PublishReply(data={"text": event.data["text"].upper()}, tags={"by": event.user})

        await client.publish("chat:1", {"text": "hi"})
        pub = await client.next_publication("chat:1")
        assert pub.json() == {"text": "HI"} and pub.tags == {"by": "anna"}
        assert pub.info is not None and pub.info.user == "anna" and pub.offset == 1


async def test_rpc(node: Node) -> None:
    async with TestClient(node, token="good") as client:
        with pytest.raises(rotary.MethodNotFound):
            await client.rpc("nothing")

        @node.on_rpc
        async def rpc(event: RPCEvent) -> object:
            if event.method != "sum":
                raise rotary.MethodNotFound()
            return {"sum": sum(event.data)}

        assert await client.rpc("sum", [1, 2, 3]) == {"sum": 6}


async def test_presence_and_history_for_subscribers_of_channels_that_have_them(node: Node) -> None:
    async with (
        TestClient(node, token="good") as anna,
        TestClient(node, token="good", headers={"x-user": "bob"}) as bob,
    ):
        await anna.subscribe("chat:1")
        with pytest.raises(rotary.ClientError) as outsider:
            await bob.presence("chat:1")
        assert outsider.value.code == 103
        with pytest.raises(rotary.ClientError) as off:
            await anna.presence("news")
        assert off.value.code == 108
        await bob.subscribe("chat:1", join_leave=True)
        await settled(node)
        present = await anna.presence("chat:1")
        assert {info.user for info in present.values()} == {"anna", "bob"}
        assert present[anna.client_id].conn_info == b'{"name":"Anna"}'
        assert (await bob.presence_stats("chat:1")).num_users == 2
        assert (await node.presence_stats("chat:1")).num_clients == 2
        assert set((await node.presence("chat:1")).keys()) == {anna.client_id, bob.client_id}

        await node.publish("chat:1", {"n": 1})
        await node.publish("chat:1", b'{"n":2}')
        history = await anna.history("chat:1", limit=10)
        assert [pub.json() for pub in history.publications] == [{"n": 1}, {"n": 2}]
        server_side = await node.history("chat:1")
        assert server_side.position == history.position and server_side.position.offset == 2


async def test_recovery_after_reconnect(node: Node) -> None:
    async with TestClient(node, token="good") as first:
        position = (await first.subscribe("chat:r", recoverable=True)).position
    assert position is not None
    await node.publish("chat:r", {"missed": 1})
    async with TestClient(node, token="good") as again:
        result = await again.subscribe("chat:r", recover_since=position)
    assert result.recovered and [pub.json() for pub in result.publications] == [{"missed": 1}]


async def test_on_connect_and_on_disconnect_are_told(node: Node) -> None:
    told: list[object] = []

    @node.on_connect
    async def connect(event: ConnectEvent) -> None:
        told.append(("connect", event.user))

    @node.on_disconnect
    async def disconnect(event: DisconnectEvent) -> None:
        told.append(("disconnect", event.user, event.code))

    async with TestClient(node, token="good"):
        assert told == [("connect", "anna")]
    assert told == [("connect", "anna"), ("disconnect", "anna", 3000)]


async def test_server_side_operations_reach_the_client(node: Node) -> None:
    async with TestClient(node, token="good") as client:
        await node.subscribe("anna", "chat:server", SubscribeReply(data={"why": "invited"}))
        push = await client.next_push("subscribe", "chat:server")
        assert push.data == b'{"why":"invited"}'
        await node.broadcast(["chat:server", "other"], {"b": 1})
        assert (await client.next_publication()).json() == {"b": 1}
        await node.unsubscribe("anna", "chat:server")
        assert (await client.next_push("unsubscribe", "chat:server")).code == 2000
        assert node.channels() == {}
        assert node.info().num_users == 1
        await node.disconnect("anna", rotary.Disconnect(4000, "bye"))
        assert (await client.wait_closed()).code == 4000
        with pytest.raises(rotary.Disconnect):
            await client.rpc("x")


async def test_server_side_refresh_extends_the_connection(node: Node) -> None:
    refreshed: list[RefreshEvent] = []

    @node.on_connecting
    async def connecting(event: ConnectingEvent) -> ConnectReply:
        return ConnectReply(user="u", expire_at=int(time.time()) + 3600, client_side_refresh=True)

    @node.on_refresh
    async def refresh(event: RefreshEvent) -> RefreshReply:
        refreshed.append(event)
        return RefreshReply(expire_at=int(time.time()) + 7200, info={"again": True})

    async with TestClient(node) as client:
        assert await client.refresh("new-token") > 3600
    assert refreshed[0].token == "new-token" and refreshed[0].client_side


async def test_protobuf_client_gets_bytes(node: Node) -> None:
    @node.on_rpc
    async def rpc(event: RPCEvent) -> object:
        assert event.data == b"\x00\x01" and event.protocol == "protobuf"
        return b"\x02"

    async with TestClient(node, token="good", protocol="protobuf") as client:
        assert await client.rpc("raw", b"\x00\x01") == b"\x02"


def test_errors_carry_centrifugo_codes() -> None:
    assert rotary.ClientError(4001, "custom").code == 4001
    assert (rotary.BadRequest().code, rotary.BadRequest().message) == (107, "bad request")
    assert rotary.TooManyRequests().temporary
    with pytest.raises(ValueError):
        rotary.Disconnect(1000, "")


def test_node_is_the_internal_node_transports_serve() -> None:
    from rotary.node import node as internal

    assert issubclass(rotary.Node, internal.Node)


def test_version_is_single_sourced() -> None:
    from importlib.metadata import version

    from rotary.node.node import VERSION

    assert rotary.__version__ == version("rotary") == VERSION
