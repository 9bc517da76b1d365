"""centrifuge-python keeps stream state and connection state with rotary, over JSON and Protobuf.

What an application relies on across time: publications missed while away come back once and in
order (https://centrifugal.dev/docs/server/history_and_recovery), an epoch change is reported as
not recovered, cache recovery hands over the latest publication
(https://centrifugal.dev/docs/server/cache_recovery), presence and join/leave
(https://centrifugal.dev/docs/server/presence), connection and subscription tokens refreshed
through the SDK's callbacks (https://centrifugal.dev/docs/server/authentication,
https://centrifugal.dev/docs/server/channel_token_auth), server-side subscriptions
(https://centrifugal.dev/docs/server/server_subs) and the API's disconnect.

Expiry grace delays are 2 s here, so a token that is not refreshed ends within seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from centrifuge import ClientState, SubscriptionState
from centrifuge.types import StreamPosition
from conftest import DEFAULT_CONFIG, RotaryServer, merged, running_rotary, unique_channel
from helpers.cluster import RotaryNode, memory_config, token

pytestmark = pytest.mark.compat

GRACE = 2.0
"""Seconds of ``client.expired_close_delay`` and ``client.expired_sub_close_delay``.

Above one second on purpose: a token's ``exp`` is in whole seconds, so the ``ttl`` the server
announces (whole seconds too) may point up to a second past ``exp``, and the SDK refreshes at ``ttl``.
"""

TOKEN_LIFETIME = 2
"""Seconds a connection or subscription token of the expiry tests is valid."""

OUTLIVE = TOKEN_LIFETIME + GRACE + 2.5
"""Long enough for an unrefreshed connection or subscription to have been ended: a subscription ends
at the first presence tick (every 500 ms) whose Unix second is past ``exp`` plus the grace delay."""

MARGIN = 0.5
"""Seconds a test waits beyond the moment the server would have ended an unrefreshed connection."""

CLOCK_SLACK = 0.1
"""Seconds by which an expiry may seem early: the server's timers run on its monotonic clock."""

CACHE_NAMESPACE: dict[str, Any] = {
    "name": "cache",
    "history_size": 1,
    "history_ttl": "300s",
    "force_recovery": True,
    "force_recovery_mode": "cache",
    "allow_subscribe_for_client": True,
}

STATE_CONFIG: dict[str, Any] = {
    "client": {
        "expired_close_delay": f"{GRACE * 1000:.0f}ms",
        "expired_sub_close_delay": f"{GRACE * 1000:.0f}ms",
        "presence_update_interval": "500ms",  # subscription expiry is checked on this tick
    },
    "channel": {"namespaces": [*DEFAULT_CONFIG["channel"]["namespaces"], CACHE_NAMESPACE]},
}

DISCONNECT_EXPIRED = 3005
UNSUBSCRIBE_EXPIRED = 2501

SdkFactory = Callable[..., Any]
TokenFactory = Callable[..., str]


@pytest.fixture(scope="module")
def rotary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryServer]:
    """The shared server of this module: short expiry grace and a ``cache`` namespace."""
    with running_rotary(tmp_path_factory.mktemp("rotary"), merged(DEFAULT_CONFIG, STATE_CONFIG)) as server:
        yield server


@pytest.fixture(params=[False, True], ids=["json", "protobuf"])
def use_protobuf(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def unpayload(data: Any) -> Any:
    """Data as the SDK hands it over (bytes over Protobuf), back to a JSON value."""
    return orjson.loads(data) if isinstance(data, bytes) else data


@pytest.fixture
def connect(
    sdk_clients: SdkFactory, rotary: RotaryServer, make_token: TokenFactory, use_protobuf: bool
) -> Callable[..., Awaitable[Any]]:
    """``await connect(user, claims={...}, **client_options)``: a connected client of the server."""

    async def connect(user: str = "42", claims: dict[str, Any] | None = None, **options: Any) -> Any:
        sdk = sdk_clients(
            rotary, use_protobuf=use_protobuf, token=make_token({"sub": user, **(claims or {})}), **options
        )
        await sdk.client.connect()
        await sdk.client.ready(timeout=5)
        return sdk

    return connect


async def subscribed(sdk: Any, channel: str, **options: Any) -> tuple[Any, Any]:
    sub, events = sdk.subscription(channel, **options)
    await sub.subscribe()
    await sub.ready(timeout=5)
    return sub, events


async def publish(server: Any, channel: str, *numbers: int) -> None:
    for number in numbers:
        await server.api("publish", {"channel": channel, "data": {"n": number}})


async def publications(events: Any, count: int) -> list[tuple[int, Any]]:
    """The next ``count`` publications as (offset, data)."""
    seen = [await events.next("on_publication") for _ in range(count)]
    return [(ctx.pub.offset, unpayload(ctx.pub.data)) for ctx in seen]


def expiring(seconds: int = TOKEN_LIFETIME) -> int:
    return int(time.time()) + seconds


# -- recovery ------------------------------------------------------------------------------------


async def test_missed_publications_are_recovered_once_and_in_order(
    connect: Callable[..., Awaitable[Any]], rotary: RotaryServer, channel: str
) -> None:
    sdk = await connect()
    _, events = await subscribed(sdk, channel)
    await publish(rotary, channel, 1)
    assert await publications(events, 1) == [(1, {"n": 1})]

    await sdk.client.disconnect()
    await publish(rotary, channel, 2, 3, 4)
    await sdk.client.connect()

    ctx = await events.next("on_subscribed")  # the first subscribe's event
    ctx = await events.next("on_subscribed")
    assert (ctx.was_recovering, ctx.recovered) == (True, True)
    assert await publications(events, 3) == [(2, {"n": 2}), (3, {"n": 3}), (4, {"n": 4})]
    await publish(rotary, channel, 5)
    assert await publications(events, 1) == [(5, {"n": 5})]
    assert events.names().count("on_publication") == 5


async def test_recovery_is_refused_after_the_epoch_changed(
    sdk_clients: SdkFactory, tmp_path: Path, use_protobuf: bool
) -> None:
    """A memory-engine server restarted on the same port starts a new epoch for every channel."""
    node = RotaryNode(tmp_path / "node", memory_config())
    node.start()
    try:
        sdk = sdk_clients(node, use_protobuf=use_protobuf, token=token("42"))
        await sdk.client.connect()
        await sdk.client.ready(timeout=5)
        channel = unique_channel()
        _, events = await subscribed(sdk, channel)
        first = await events.next("on_subscribed")
        await node.api("publish", {"channel": channel, "data": {"n": 1}})
        assert await publications(events, 1) == [(1, {"n": 1})]

        node.stop()
        node.start()

        again = await events.next("on_subscribed", timeout=10)
        assert (again.was_recovering, again.recovered) == (True, False)
        assert again.stream_position.epoch != first.stream_position.epoch
        await node.api("publish", {"channel": channel, "data": {"n": 2}})
        assert await publications(events, 1) == [(1, {"n": 2})]
        assert events.names().count("on_publication") == 2
    finally:
        node.stop()
        print(f"--- rotary log ---\n{node.log()}")


async def test_cache_recovery_gives_the_latest_publication(
    connect: Callable[..., Awaitable[Any]], rotary: RotaryServer
) -> None:
    channel = "cache:" + unique_channel().split(":")[1]
    await publish(rotary, channel, 1, 2, 3)
    sdk = await connect()

    async def no_state_yet(channel: str) -> StreamPosition:
        """An empty position: the SDK subscribes with recovery and no offset, as an empty `since`."""
        return StreamPosition(offset=0, epoch="")

    _, events = await subscribed(sdk, channel, get_state=no_state_yet)
    assert await publications(events, 1) == [(3, {"n": 3})]
    # Publications of a channel arrive in order: another recovered one would come before this.
    await publish(rotary, channel, 4)
    assert await publications(events, 1) == [(4, {"n": 4})]
    assert events.names().count("on_publication") == 2


# -- presence --------------------------------------------------------------------------------------


async def test_presence_and_join_leave_of_two_users(
    connect: Callable[..., Awaitable[Any]], channel: str
) -> None:
    ann = await connect("ann")
    bob = await connect("bob")
    ann_sub, ann_events = await subscribed(ann, channel, join_leave=True)
    bob_sub, _ = await subscribed(bob, channel)

    own = await ann_events.next("on_join")  # a subscriber is told of its own join first
    assert (own.info.user, own.info.client) == ("ann", ann.client.client_id)
    joined = await ann_events.next("on_join")
    assert (joined.info.user, joined.info.client) == ("bob", bob.client.client_id)
    presence = await ann_sub.presence()
    assert {client: info.user for client, info in presence.clients.items()} == {
        ann.client.client_id: "ann",
        bob.client.client_id: "bob",
    }
    stats = await ann_sub.presence_stats()
    assert (stats.num_clients, stats.num_users) == (2, 2)

    await bob_sub.unsubscribe()
    left = await ann_events.next("on_leave")
    assert (left.info.user, left.info.client) == ("bob", bob.client.client_id)
    stats = await ann_sub.presence_stats()
    assert (stats.num_clients, stats.num_users) == (1, 1)


# -- connection and subscription expiry ---------------------------------------------------------------


async def test_token_refresh_keeps_the_connection_and_the_subscription(
    connect: Callable[..., Awaitable[Any]], rotary: RotaryServer, make_token: TokenFactory, channel: str
) -> None:
    private = "$" + channel
    connection_tokens: list[str] = []
    subscription_tokens: list[str] = []

    async def get_token() -> str:
        connection_tokens.append(make_token({"sub": "42", "exp": expiring()}))
        return connection_tokens[-1]

    async def get_subscription_token(channel: str) -> str:
        subscription_tokens.append(make_token({"sub": "42", "channel": channel, "exp": expiring()}))
        return subscription_tokens[-1]

    first_exp = expiring()
    sdk = await connect(claims={"exp": first_exp}, get_token=get_token)
    sub, events = await subscribed(sdk, private, get_token=get_subscription_token)
    await asyncio.sleep(first_exp + GRACE + MARGIN - time.time())
    assert connection_tokens  # refreshed at least once
    assert len(subscription_tokens) >= 2  # the subscribe, then at least one refresh
    assert sdk.client.state is ClientState.CONNECTED
    assert sdk.events.names().count("on_connecting") == 1  # only the initial connect
    assert sub.state is SubscriptionState.SUBSCRIBED
    assert events.names().count("on_subscribing") == 1  # only the initial subscribe
    await rotary.api("publish", {"channel": private, "data": {"n": 1}})
    assert await publications(events, 1) == [(1, {"n": 1})]


async def test_tokens_that_cannot_be_refreshed_end_the_connection_or_the_subscription(
    connect: Callable[..., Awaitable[Any]], make_token: TokenFactory, channel: str
) -> None:
    """Two clients at once (to keep the wait short): one's connection and one's subscription expire,
    each no sooner than its token's ``exp`` plus the grace delay."""
    private = "$" + channel
    exp = expiring()
    first_token = iter([make_token({"sub": "42", "channel": private, "exp": exp})])

    async def backend_down() -> str:
        raise ConnectionError("the application backend is down")

    async def first_token_only(channel: str) -> str:
        for fresh in first_token:
            return fresh
        return await backend_down()

    async def connection_expires() -> None:
        sdk = await connect(claims={"exp": exp}, get_token=backend_down)
        await sdk.events.next("on_connecting")  # the initial connect
        ctx = await sdk.events.next("on_connecting", timeout=OUTLIVE)
        assert time.time() >= exp + GRACE - CLOCK_SLACK
        assert (ctx.code, ctx.reason) == (DISCONNECT_EXPIRED, "connection expired")

    async def subscription_expires() -> None:
        sdk = await connect()
        _, events = await subscribed(sdk, private, get_token=first_token_only)
        await events.next("on_subscribing")  # the initial subscribe
        ctx = await events.next("on_subscribing", timeout=OUTLIVE)
        assert time.time() >= exp + GRACE - CLOCK_SLACK
        assert (ctx.code, ctx.reason) == (UNSUBSCRIBE_EXPIRED, "subscription expired")
        assert sdk.client.state is ClientState.CONNECTED

    await asyncio.gather(connection_expires(), subscription_expires())


# -- server-side subscriptions and API disconnect ---------------------------------------------------


async def test_server_side_subscription_from_token(
    connect: Callable[..., Awaitable[Any]], rotary: RotaryServer, channel: str
) -> None:
    sdk = await connect(claims={"channels": [channel]})
    ctx = await sdk.events.next("on_subscribed")
    assert ctx.channel == channel
    await publish(rotary, channel, 1)
    pub = await sdk.events.next("on_publication")
    assert (pub.channel, unpayload(pub.pub.data)) == (channel, {"n": 1})


async def test_server_side_subscription_from_the_api(
    connect: Callable[..., Awaitable[Any]], rotary: RotaryServer, channel: str
) -> None:
    user = "api-subscribed-" + channel.split(":")[1]
    sdk = await connect(user)
    await rotary.api("subscribe", {"user": user, "channel": channel})
    ctx = await sdk.events.next("on_subscribed")
    assert ctx.channel == channel
    await publish(rotary, channel, 1)
    pub = await sdk.events.next("on_publication")
    assert (pub.channel, unpayload(pub.pub.data)) == (channel, {"n": 1})


@pytest.mark.parametrize(
    ("code", "event", "state"),
    [(4501, "on_disconnected", ClientState.DISCONNECTED), (4001, "on_connecting", ClientState.CONNECTING)],
    ids=["terminal", "reconnect"],
)
async def test_api_disconnect_reaches_the_sdk_with_its_code_and_reason(
    connect: Callable[..., Awaitable[Any]],
    rotary: RotaryServer,
    channel: str,
    code: int,
    event: str,
    state: ClientState,
) -> None:
    user = "kicked-" + channel.split(":")[1]
    sdk = await connect(user, min_reconnect_delay=2.0, max_reconnect_delay=5.0)
    await sdk.events.next("on_connecting")  # the initial connect
    await rotary.api("disconnect", {"user": user, "disconnect": {"code": code, "reason": "go away"}})
    ctx = await sdk.events.next(event)
    assert (ctx.code, ctx.reason) == (code, "go away")
    assert sdk.client.state is state
