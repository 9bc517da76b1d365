"""Three rotary processes on one Redis behave as one server to centrifuge-python and the HTTP API.

A publication to any node reaches subscribers on every node, presence and join/leave span nodes, and
the server API commands aimed at users or at the whole cluster (disconnect, subscribe, unsubscribe,
info, channels) act on every node, whichever node received them
(https://centrifugal.dev/docs/server/engines, https://centrifugal.dev/docs/server/server_api).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from centrifuge import ClientState
from helpers import redis_servers
from helpers.cluster import (
    RotaryNode,
    cluster_nodes,
    connected,
    eventually,
    next_where,
    redis_config,
    rotary_nodes,
    subscribed,
)

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RotaryNode]]:
    """Three nodes sharing one redis-server of this module."""
    redis = redis_servers.start_standalone()
    try:
        config = redis_config(redis.addresses[0], redis_servers.unique_prefix())
        with rotary_nodes(tmp_path_factory.mktemp("multinode"), config, 3) as started:
            yield started
    finally:
        redis.stop()


@pytest.fixture
def channel() -> str:
    return "chat:" + uuid.uuid4().hex[:12]


@pytest.fixture(params=[False, True], ids=["json", "protobuf"])
def use_protobuf(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def unpayload(data: Any) -> Any:
    return orjson.loads(data) if isinstance(data, bytes) else data


def named(nodes: list[RotaryNode], reported: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The reported node stats by port (a node's default name ends with its port)."""
    by_port: dict[int, dict[str, Any]] = {}
    for stats in reported:
        for node in nodes:
            if stats["name"].endswith(f"_{node.port}"):
                by_port[node.port] = stats
    return by_port


async def test_api_publication_reaches_clients_on_every_node(
    nodes: list[RotaryNode], sdk_clients: Any, channel: str, use_protobuf: bool
) -> None:
    logs = []
    for index, node in enumerate(nodes):
        sdk = await connected(sdk_clients, node, f"reader{index}", use_protobuf=use_protobuf)
        logs.append((await subscribed(sdk, channel))[1])

    result = await nodes[0].api("publish", {"channel": channel, "data": {"text": "to all"}})

    for events in logs:
        ctx = await events.next("on_publication")
        assert unpayload(ctx.pub.data) == {"text": "to all"}
        assert ctx.pub.offset == result["offset"] == 1


async def test_client_publication_on_one_node_reaches_the_others_and_their_history(
    nodes: list[RotaryNode], sdk_clients: Any, channel: str
) -> None:
    reader = await connected(sdk_clients, nodes[0], "reader")
    _, reader_events = await subscribed(reader, channel)
    writer = await connected(sdk_clients, nodes[1], "writer")
    writer_sub, _ = await subscribed(writer, channel)

    for number in range(3):
        await writer_sub.publish({"n": number})

    received = [await reader_events.next("on_publication") for _ in range(3)]
    assert [(ctx.pub.offset, ctx.pub.data, ctx.pub.info.user) for ctx in received] == [
        (1, {"n": 0}, "writer"),
        (2, {"n": 1}, "writer"),
        (3, {"n": 2}, "writer"),
    ]
    history = await nodes[2].api("history", {"channel": channel, "limit": -1})
    assert [pub["data"] for pub in history["publications"]] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_join_and_leave_of_a_client_on_another_node(
    nodes: list[RotaryNode], sdk_clients: Any, channel: str
) -> None:
    watcher = await connected(sdk_clients, nodes[0], "ann")
    _, events = await subscribed(watcher, channel)
    visitor = await connected(sdk_clients, nodes[1], "bob")
    await subscribed(visitor, channel)

    join = await next_where(events, "on_join", lambda ctx: ctx.info.user == "bob")
    assert join.info.client == visitor.client.client_id
    await visitor.client.disconnect()
    leave = await next_where(events, "on_leave", lambda ctx: ctx.info.user == "bob")
    assert leave.info.client == join.info.client


async def test_presence_lists_clients_of_every_node(
    nodes: list[RotaryNode], sdk_clients: Any, channel: str
) -> None:
    here = await connected(sdk_clients, nodes[0], "ann")
    await subscribed(here, channel)
    there = await connected(sdk_clients, nodes[1], "bob")
    there_sub, _ = await subscribed(there, channel)

    presence = (await nodes[0].api("presence", {"channel": channel}))["presence"]
    assert {client: info["user"] for client, info in presence.items()} == {
        here.client.client_id: "ann",
        there.client.client_id: "bob",
    }
    stats = await nodes[2].api("presence_stats", {"channel": channel})
    assert (stats["num_clients"], stats["num_users"]) == (2, 2)
    seen_by_sdk = await there_sub.presence()
    assert set(seen_by_sdk.clients) == {here.client.client_id, there.client.client_id}


@pytest.mark.parametrize(
    ("request_part", "code", "reason"),
    [({"disconnect": {"code": 4501, "reason": "banned"}}, 4501, "banned"), ({}, 3503, "force disconnect")],
    ids=["custom", "default"],
)
async def test_api_disconnect_ends_the_users_connections_on_other_nodes(
    nodes: list[RotaryNode], sdk_clients: Any, request_part: dict[str, Any], code: int, reason: str
) -> None:
    user = "target-" + uuid.uuid4().hex[:8]
    on_second = await connected(sdk_clients, nodes[1], user)
    on_third = await connected(sdk_clients, nodes[2], user)
    bystander = await connected(sdk_clients, nodes[1], "bystander")

    await nodes[0].api("disconnect", {"user": user, **request_part})

    for sdk in (on_second, on_third):
        ctx = await sdk.events.next("on_disconnected")
        assert (ctx.code, ctx.reason) == (code, reason)
        assert sdk.client.state is ClientState.DISCONNECTED
    assert bystander.client.state is ClientState.CONNECTED


async def test_api_subscribe_and_unsubscribe_reach_a_user_on_another_node(
    nodes: list[RotaryNode], sdk_clients: Any, channel: str
) -> None:
    user = "server-side-" + uuid.uuid4().hex[:8]
    sdk = await connected(sdk_clients, nodes[1], user)

    await nodes[0].api("subscribe", {"user": user, "channel": channel})
    subscribed_ctx = await sdk.events.next("on_subscribed")
    assert subscribed_ctx.channel == channel
    await nodes[2].api("publish", {"channel": channel, "data": {"server": "side"}})
    publication = await sdk.events.next("on_publication")
    assert (publication.channel, publication.pub.data) == (channel, {"server": "side"})

    await nodes[2].api("unsubscribe", {"user": user, "channel": channel})
    unsubscribed = await sdk.events.next("on_unsubscribed")
    assert unsubscribed.channel == channel


async def test_info_on_any_node_lists_every_node_with_its_counts(
    nodes: list[RotaryNode], sdk_clients: Any, channel: str
) -> None:
    await subscribed(await connected(sdk_clients, nodes[0], "ann"), channel)
    for user in ("bob", "carl"):
        await subscribed(await connected(sdk_clients, nodes[1], user), channel)
    expected = {nodes[0].port: (1, 1, 1), nodes[1].port: (2, 2, 1), nodes[2].port: (0, 0, 0)}

    for asked in nodes:

        async def counts_match(asked: RotaryNode = asked) -> bool:
            reported = await cluster_nodes(asked)
            by_port = named(nodes, reported)
            counts = {
                port: (stats["num_clients"], stats["num_users"], stats["num_channels"])
                for port, stats in by_port.items()
            }
            return len(reported) == 3 and counts == expected

        await eventually(counts_match, f"info on :{asked.port} reports every node with its clients")
    uids = [{stats["uid"] for stats in await cluster_nodes(asked)} for asked in nodes]
    assert uids[0] == uids[1] == uids[2] and len(uids[0]) == 3


async def test_channels_lists_channels_subscribed_on_other_nodes(
    nodes: list[RotaryNode], sdk_clients: Any
) -> None:
    prefix = "chat:" + uuid.uuid4().hex[:8]
    await subscribed(await connected(sdk_clients, nodes[1], "bob"), prefix + "-one")
    for user in ("carl", "dora"):
        await subscribed(await connected(sdk_clients, nodes[2], user), prefix + "-two")

    async def every_node_known() -> bool:
        return len(await cluster_nodes(nodes[0])) == 3

    await eventually(every_node_known, "node discovery")
    found = (await nodes[0].api("channels", {"pattern": prefix + "*"}))["channels"]
    assert found == {prefix + "-one": {"num_clients": 1}, prefix + "-two": {"num_clients": 2}}
