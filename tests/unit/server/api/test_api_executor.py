"""The API executor, method by method, against a real Node with the memory engine, the server hooks
and channel rules of a real Config, and real WebSocket clients where a method acts on connections."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from helpers.server import InProcessServer as Stack

from rotary.engines.base import HistoryQuery
from rotary.server.api.executor import ApiExecutor
from rotary.server.api.schema import (
    ApiError,
    BatchRequest,
    BoolValue,
    BroadcastRequest,
    ChannelInfo,
    ChannelsRequest,
    ClientInfo,
    Command,
    Disconnect,
    DisconnectRequest,
    EmptyResult,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    MapClearRequest,
    MapPublishRequest,
    MapReadStateRequest,
    MapReadStreamRequest,
    MapRemoveRequest,
    MapStatsRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    PublishResult,
    RefreshRequest,
    RPCRequest,
    SharedPollPublishRequest,
    StreamPosition,
    SubscribeOptionOverride,
    SubscribeRequest,
    UnsubscribeRequest,
)


async def fails_with(code: int, call: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code == code
    return caught.value


# --- publish and broadcast -------------------------------------------------------------------------


async def test_publish_without_history_has_no_position(stack: Stack, api: ApiExecutor) -> None:
    assert await api.publish(PublishRequest(channel="news", data=b'{"a":1}')) == PublishResult()


@pytest.mark.parametrize(
    "asked",
    [
        {},
        {"tags": {"k": "v"}},
        {"idempotency_key": "key"},
        {"delta": True},
        {"version": 3, "version_epoch": "e"},
        {"skip_history": True},
    ],
)
def test_publish_options_are_the_namespaces_with_what_the_request_asks(
    stack: Stack, api: ApiExecutor, asked: dict[str, object]
) -> None:
    """The namespace's shared options when the request asks for nothing, else the same fields
    changed by it: what ``dataclasses.replace`` on the namespace's options gives."""
    target = stack.server.rules.resolve("hist:a")
    request = PublishRequest(channel="hist:a", data=b"1", **asked)  # type: ignore[arg-type]
    expected = dataclasses.replace(
        target.publish_options(),
        tags=dict(request.tags),
        idempotency_key=request.idempotency_key,
        use_delta=request.delta or target.options.delta_publish,
        version=request.version,
        version_epoch=request.version_epoch,
    )
    if request.skip_history:
        expected = dataclasses.replace(expected, history_size=0, history_ttl=0.0)
    options = ApiExecutor._publish_options(target, request)
    assert options == expected
    assert (options is target.namespace.publish_defaults) == (not asked)


async def test_publish_with_history_reports_the_position(stack: Stack, api: ApiExecutor) -> None:
    first = await api.publish(PublishRequest(channel="hist:a", data=b"1"))
    second = await api.publish(PublishRequest(channel="hist:a", data=b"2"))
    assert (first.offset, second.offset) == (1, 2)
    assert first.epoch and first.epoch == second.epoch


async def test_publish_skip_history_keeps_nothing(stack: Stack, api: ApiExecutor) -> None:
    assert (
        await api.publish(PublishRequest(channel="hist:a", data=b"1", skip_history=True)) == PublishResult()
    )
    found = await stack.node.read_history("hist:a", HistoryQuery(limit=-1))
    assert found.publications == []


async def test_publish_reaches_subscribers(stack: Stack, api: ApiExecutor) -> None:
    client = await stack.connect("u1", "news")
    await api.publish(PublishRequest(channel="news", data=b'{"text":"hi"}', tags={"k": "v"}))
    push = await client.push("pub")
    assert push["channel"] == "news"
    assert push["pub"]["data"] == {"text": "hi"}
    assert push["pub"]["tags"] == {"k": "v"}


async def test_publish_b64data_carries_binary(stack: Stack, api: ApiExecutor) -> None:
    encoded = base64.b64encode(b"\x00\xff").decode()
    await api.publish(PublishRequest(channel="bin:a", b64data=encoded))
    found = await stack.node.read_history("bin:a", HistoryQuery(limit=-1))
    assert [pub.data for pub in found.publications] == [b"\x00\xff"]


async def test_publish_idempotency_key_publishes_once(stack: Stack, api: ApiExecutor) -> None:
    first = await api.publish(PublishRequest(channel="hist:a", data=b"1", idempotency_key="k"))
    again = await api.publish(PublishRequest(channel="hist:a", data=b"1", idempotency_key="k"))
    assert first == again


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (PublishRequest(channel="", data=b"1"), 107),
        (PublishRequest(channel="nope:a", data=b"1"), 102),
        (PublishRequest(channel="news"), 107),
        (PublishRequest(channel="json:a", data=b"\x00"), 107),
        (PublishRequest(channel="news", b64data="not base64!"), 107),
        (PublishRequest(channel="news", b64data="AAE"), 107),
        (PublishRequest(channel="map:a", data=b"1"), 107),
    ],
    ids=[
        "empty-channel",
        "unknown-namespace",
        "missing-data",
        "not-json",
        "bad-base64",
        "bad-padding",
        "map",
    ],
)
async def test_publish_rejects(stack: Stack, api: ApiExecutor, request_: PublishRequest, code: int) -> None:
    await fails_with(code, api.publish(request_))


async def test_broadcast_answers_per_channel_in_order(stack: Stack, api: ApiExecutor) -> None:
    result = await api.broadcast(BroadcastRequest(channels=["hist:a", "nope:b", "", "news"], data=b"1"))
    outcomes = result.responses
    assert outcomes[0].result.offset == 1
    assert [o.error.code if o.error else None for o in outcomes] == [None, 102, 107, None]
    assert outcomes[3].result == PublishResult()


@pytest.mark.parametrize(
    "request_",
    [BroadcastRequest(channels=[], data=b"1"), BroadcastRequest(channels=["news"], b64data="%%")],
    ids=["no-channels", "bad-base64"],
)
async def test_broadcast_rejects_as_a_whole(
    stack: Stack, api: ApiExecutor, request_: BroadcastRequest
) -> None:
    await fails_with(107, api.broadcast(request_))


# --- connections -----------------------------------------------------------------------------------


async def test_subscribe_pushes_subscribe_then_publications(stack: Stack, api: ApiExecutor) -> None:
    client = await stack.connect("u1")
    result = await api.subscribe(SubscribeRequest(channel="news", user="u1", data=b'{"hello":1}'))
    assert result == EmptyResult()
    push = await client.push("subscribe")
    assert push["channel"] == "news"
    assert push["subscribe"].get("data") == {"hello": 1}
    await api.publish(PublishRequest(channel="news", data=b'"x"'))
    assert (await client.push("pub"))["pub"]["data"] == "x"


async def test_subscribe_override_and_info_reach_presence(stack: Stack, api: ApiExecutor) -> None:
    client = await stack.connect("u1")
    override = SubscribeOptionOverride(presence=BoolValue(True))
    await api.subscribe(
        SubscribeRequest(
            channel="news", user="u1", override=override, b64info=base64.b64encode(b'{"role":"x"}').decode()
        )
    )
    await client.push("subscribe")
    presence = await stack.node.read_presence("news")
    assert presence[client.id].chan_info == b'{"role":"x"}'


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (SubscribeRequest(channel="", user="u1"), 107),
        (SubscribeRequest(channel="nope:a", user="u1"), 102),
        (SubscribeRequest(channel="news", user="u1", b64info="%"), 107),
        (SubscribeRequest(channel="news", user="u1", b64data="%"), 107),
    ],
    ids=["empty-channel", "unknown-namespace", "bad-b64info", "bad-b64data"],
)
async def test_subscribe_rejects(
    stack: Stack, api: ApiExecutor, request_: SubscribeRequest, code: int
) -> None:
    await fails_with(code, api.subscribe(request_))


async def test_unsubscribe_pushes_code_2000(stack: Stack, api: ApiExecutor) -> None:
    client = await stack.connect("u1", "news")
    await api.unsubscribe(UnsubscribeRequest(channel="news", user="u1"))
    push = await client.push("unsubscribe")
    assert (push["channel"], push["unsubscribe"]["code"]) == ("news", 2000)


async def test_unsubscribe_unknown_namespace_is_102(stack: Stack, api: ApiExecutor) -> None:
    await fails_with(102, api.unsubscribe(UnsubscribeRequest(channel="nope:a", user="u1")))


async def test_disconnect_defaults_to_3503(stack: Stack, api: ApiExecutor) -> None:
    client = await stack.connect("u1")
    await api.disconnect(DisconnectRequest(user="u1"))
    assert await client.close_code() == 3503


async def test_disconnect_custom_code_and_whitelist(stack: Stack, api: ApiExecutor) -> None:
    kept = await stack.connect("u1")
    gone = await stack.connect("u1")
    await api.disconnect(
        DisconnectRequest(user="u1", disconnect=Disconnect(4001, "bye"), whitelist=[kept.id])
    )
    assert await gone.close_code() == 4001
    assert "id" in await kept.command(presence={"channel": "pres:room"})  # still answering


@pytest.mark.parametrize(
    "disconnect",
    [Disconnect(0, ""), Disconnect(1000, "normal"), Disconnect(5000, ""), Disconnect(4000, "x" * 124)],
)
async def test_disconnect_rejects_what_a_close_frame_cannot_carry(
    stack: Stack, api: ApiExecutor, disconnect: Disconnect
) -> None:
    await fails_with(107, api.disconnect(DisconnectRequest(user="u1", disconnect=disconnect)))


async def test_refresh_expired_closes_with_3005(stack: Stack, api: ApiExecutor) -> None:
    client = await stack.connect("u1")
    await api.refresh(RefreshRequest(user="u1", expired=True))
    assert await client.close_code() == 3005


async def test_refresh_replaces_connection_info(stack: Stack, api: ApiExecutor) -> None:
    client = await stack.connect("u1", "pres:room")
    await api.refresh(RefreshRequest(user="u1", info=b'{"v":2}'))
    assert stack.node.hub.clients[client.id].conn_info == b'{"v":2}'


# --- channel state ---------------------------------------------------------------------------------


async def test_presence_and_stats(stack: Stack, api: ApiExecutor) -> None:
    first = await stack.connect("u1", "pres:room")
    second = await stack.connect("u1", "pres:room")
    presence = await api.presence(PresenceRequest(channel="pres:room"))
    assert presence.presence == {
        first.id: ClientInfo(user="u1", client=first.id),
        second.id: ClientInfo(user="u1", client=second.id),
    }
    stats = await api.presence_stats(PresenceStatsRequest(channel="pres:room"))
    assert (stats.num_clients, stats.num_users) == (2, 1)


@pytest.mark.parametrize(("channel", "code"), [("", 107), ("nope:a", 102), ("news", 108)])
async def test_presence_rejects(stack: Stack, api: ApiExecutor, channel: str, code: int) -> None:
    await fails_with(code, api.presence(PresenceRequest(channel=channel)))
    await fails_with(code, api.presence_stats(PresenceStatsRequest(channel=channel)))


async def test_history_reads_pages(stack: Stack, api: ApiExecutor) -> None:
    for n in range(1, 5):
        await api.publish(PublishRequest(channel="hist:a", data=str(n).encode(), tags={"n": str(n)}))
    position = await api.history(HistoryRequest(channel="hist:a"))
    assert (position.publications, position.offset) == ([], 4)
    page = await api.history(
        HistoryRequest(channel="hist:a", limit=2, since=StreamPosition(1, position.epoch))
    )
    assert [(p.data, p.offset, p.tags) for p in page.publications] == [
        (b"2", 2, {"n": "2"}),
        (b"3", 3, {"n": "3"}),
    ]
    backwards = await api.history(HistoryRequest(channel="hist:a", limit=-1, reverse=True))
    assert [p.offset for p in backwards.publications] == [4, 3, 2, 1]
    assert all(p.info is None for p in backwards.publications)


async def test_history_of_a_lost_epoch_is_112(stack: Stack, api: ApiExecutor) -> None:
    await api.publish(PublishRequest(channel="hist:a", data=b"1"))
    request = HistoryRequest(channel="hist:a", limit=10, since=StreamPosition(1, "not-the-epoch"))
    await fails_with(112, api.history(request))


@pytest.mark.parametrize(("channel", "code"), [("", 107), ("nope:a", 102), ("news", 108)])
async def test_history_rejects(stack: Stack, api: ApiExecutor, channel: str, code: int) -> None:
    await fails_with(code, api.history(HistoryRequest(channel=channel)))
    await fails_with(code, api.history_remove(HistoryRemoveRequest(channel=channel)))


async def test_history_remove_keeps_the_position(stack: Stack, api: ApiExecutor) -> None:
    await api.publish(PublishRequest(channel="hist:a", data=b"1"))
    await api.history_remove(HistoryRemoveRequest(channel="hist:a"))
    after = await api.history(HistoryRequest(channel="hist:a", limit=-1))
    assert (after.publications, after.offset) == ([], 1)


async def test_channels_lists_subscribed_channels(stack: Stack, api: ApiExecutor) -> None:
    await stack.connect("u1", "news", "pres:room")
    await stack.connect("u2", "news")
    every = await api.channels(ChannelsRequest())
    assert every.channels == {"news": ChannelInfo(2), "pres:room": ChannelInfo(1)}
    matching = await api.channels(ChannelsRequest(pattern="pres:*"))
    assert matching.channels == {"pres:room": ChannelInfo(1)}


@pytest.mark.parametrize("pattern", ["[", "news[", "[]", "[!]", "[a-]", "[z-a]", "[a-cx]"])
async def test_channels_pattern_that_does_not_compile_is_internal_error(
    api: ApiExecutor, pattern: str
) -> None:
    """Centrifugo compiles the pattern as a glob and answers one that does not compile with 100."""
    with pytest.raises(ApiError) as caught:
        await api.channels(ChannelsRequest(pattern=pattern))
    assert (caught.value.code, caught.value.message) == (100, "internal server error")


async def test_info_describes_this_node(stack: Stack, api: ApiExecutor) -> None:
    await stack.connect("u1", "news", "pres:room")
    (node,) = (await api.info(InfoRequest())).nodes
    assert (node.uid, node.name) == (stack.node.id, stack.node.name)
    assert (node.num_clients, node.num_users, node.num_channels, node.num_subs) == (1, 1, 2, 2)
    assert node.version


async def test_rpc_has_no_methods(stack: Stack, api: ApiExecutor) -> None:
    await fails_with(107, api.rpc(RPCRequest()))
    await fails_with(104, api.rpc(RPCRequest(method="anything", params=b"{}")))


# --- map and shared poll channels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "request_", "code"),
    [
        ("map_publish", MapPublishRequest(channel="news"), 107),
        ("map_publish", MapPublishRequest(key="k"), 107),
        ("map_publish", MapPublishRequest(channel="nope:x", key="k"), 102),
        ("map_publish", MapPublishRequest(channel="news", key="k", data=b"{}"), 107),
        ("map_remove", MapRemoveRequest(channel="news"), 107),
        ("map_remove", MapRemoveRequest(channel="hist:a", key="k"), 107),
        ("map_read_state", MapReadStateRequest(), 107),
        ("map_read_state", MapReadStateRequest(channel="nope:x"), 102),
        ("map_read_stream", MapReadStreamRequest(channel="news"), 107),
        ("map_stats", MapStatsRequest(channel="nope:x"), 102),
        ("map_clear", MapClearRequest(channel="news"), 107),
        ("shared_poll_publish", SharedPollPublishRequest(channel="news", key="k"), 107),
        ("shared_poll_publish", SharedPollPublishRequest(channel="nope:x", key="k", version=1), 102),
        ("shared_poll_publish", SharedPollPublishRequest(channel="news", key="k", version=1), 107),
    ],
)
async def test_map_and_shared_poll_methods_refuse_stream_channels(
    stack: Stack, api: ApiExecutor, method: str, request_: object, code: int
) -> None:
    """Centrifugo's checks (fields, namespace, subscription type); rotary's config allows stream
    namespaces only, so a known channel is always the wrong type."""
    await fails_with(code, api.execute(method, request_))


# --- batch -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [False, True])
async def test_batch_replies_in_command_order(stack: Stack, api: ApiExecutor, parallel: bool) -> None:
    commands: list[Command | None] = [
        Command("publish", PublishRequest(channel="hist:a", data=b"1")),
        Command("publish", PublishRequest(channel="nope:a", data=b"1")),
        None,
        Command(),
        Command("history", HistoryRequest(channel="hist:a", limit=-1)),
    ]
    result = await api.batch(BatchRequest(commands=commands, parallel=parallel))
    replies = result.replies
    assert [r.outcome.error.code if r.outcome.error else r.method for r in replies] == [
        "publish",
        102,
        107,
        104,
        "history",
    ]
    assert replies[0].outcome.result.offset == 1
    if not parallel:
        assert [p.offset for p in replies[4].outcome.result.publications] == [1]


async def test_execute_dispatches_by_name(stack: Stack, api: ApiExecutor) -> None:
    assert await api.execute("publish", PublishRequest(channel="news", data=b"1")) == PublishResult()
