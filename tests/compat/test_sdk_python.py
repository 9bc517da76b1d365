"""centrifuge-python drives rotary over JSON and Protobuf WebSocket connections.

Each test is one behaviour an application relies on, as the SDK spec describes it
(https://centrifugal.dev/docs/transports/client_api): connecting with a JWT, subscribing, getting
publications from the server API and from other clients, presence, history, private channels,
server-side subscriptions, and the token failure paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from centrifuge import ClientState, ReplyError, SubscriptionState

pytestmark = pytest.mark.compat

DISCONNECT_INVALID_TOKEN = 3500
ERROR_PERMISSION_DENIED = 103
ERROR_TOKEN_EXPIRED = 109

SdkFactory = Callable[..., Any]
TokenFactory = Callable[..., str]
Connect = Callable[..., Awaitable[Any]]


@pytest.fixture(params=[False, True], ids=["json", "protobuf"])
def use_protobuf(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def payload(data: Any, use_protobuf: bool) -> Any:
    """Data as the SDK takes it: any JSON value over JSON, bytes over Protobuf."""
    return orjson.dumps(data) if use_protobuf else data


def unpayload(data: Any) -> Any:
    """Data as the SDK hands it over, back to a JSON value."""
    return orjson.loads(data) if isinstance(data, bytes) else data


@pytest.fixture
def connect(
    sdk_clients: SdkFactory, rotary: Any, make_token: TokenFactory, use_protobuf: bool
) -> Callable[..., Awaitable[Any]]:
    """``await connect(user, **claims)``: a client of the shared server, connected with a token."""

    async def connect(user: str = "42", **claims: Any) -> Any:
        sdk = sdk_clients(rotary, use_protobuf=use_protobuf, token=make_token({"sub": user, **claims}))
        await sdk.client.connect()
        await sdk.client.ready(timeout=5)
        return sdk

    return connect


async def subscribed(sdk: Any, channel: str, **options: Any) -> tuple[Any, Any]:
    sub, events = sdk.subscription(channel, **options)
    await sub.subscribe()
    await sub.ready(timeout=5)
    return sub, events


async def test_connect_with_jwt(connect: Connect) -> None:
    sdk = await connect()
    ctx = await sdk.events.next("on_connected")
    assert ctx.client
    assert sdk.client.state is ClientState.CONNECTED


async def test_subscribe(connect: Connect, channel: str) -> None:
    sdk = await connect()
    sub, events = await subscribed(sdk, channel)
    ctx = await events.next("on_subscribed")
    assert ctx.channel == channel
    assert ctx.recoverable and ctx.positioned  # the namespace forces recovery
    assert sub.state is SubscriptionState.SUBSCRIBED


async def test_publication_from_server_api(connect: Connect, rotary: Any, channel: str) -> None:
    sdk = await connect()
    _, events = await subscribed(sdk, channel)
    await rotary.api("publish", {"channel": channel, "data": {"text": "from the API"}})
    ctx = await events.next("on_publication")
    assert unpayload(ctx.pub.data) == {"text": "from the API"}
    assert ctx.pub.offset == 1


async def test_client_publish_reaches_another_client(
    connect: Connect, use_protobuf: bool, channel: str
) -> None:
    reader = await connect("reader")
    writer = await connect("writer")
    _, reader_events = await subscribed(reader, channel)
    writer_sub, _ = await subscribed(writer, channel)
    await writer_sub.publish(payload({"text": "hi"}, use_protobuf))
    ctx = await reader_events.next("on_publication")
    assert unpayload(ctx.pub.data) == {"text": "hi"}
    assert ctx.pub.info.user == "writer"
    assert ctx.pub.info.client == writer.client.client_id


async def test_presence_and_presence_stats(connect: Connect, channel: str) -> None:
    first = await connect("ann")
    second = await connect("bob")
    sub, _ = await subscribed(first, channel)
    await subscribed(second, channel)
    presence = await sub.presence()
    assert {client: info.user for client, info in presence.clients.items()} == {
        first.client.client_id: "ann",
        second.client.client_id: "bob",
    }
    stats = await sub.presence_stats()
    assert (stats.num_clients, stats.num_users) == (2, 2)


async def test_history(connect: Connect, use_protobuf: bool, channel: str) -> None:
    sdk = await connect()
    sub, _ = await subscribed(sdk, channel)
    for number in range(3):
        await sub.publish(payload({"n": number}, use_protobuf))
    history = await sub.history(limit=10)
    assert [unpayload(pub.data) for pub in history.publications] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [pub.offset for pub in history.publications] == [1, 2, 3]
    assert history.offset == 3 and history.epoch
    latest = await sub.history(limit=1, reverse=True)
    assert [unpayload(pub.data) for pub in latest.publications] == [{"n": 2}]


async def test_private_channel_needs_subscription_token(
    connect: Connect, rotary: Any, make_token: TokenFactory, channel: str
) -> None:
    sdk = await connect()
    private = "$" + channel
    asked: list[str] = []

    async def get_token(channel: str) -> str:
        asked.append(channel)
        return make_token({"sub": "42", "channel": channel})

    without, denied = sdk.subscription(private + "-no-token")
    await without.subscribe()
    ctx = await denied.next("on_unsubscribed")
    assert ctx.code == ERROR_PERMISSION_DENIED

    _, events = await subscribed(sdk, private, get_token=get_token)
    assert asked == [private]
    await rotary.api("publish", {"channel": private, "data": {"secret": True}})
    pub = await events.next("on_publication")
    assert unpayload(pub.pub.data) == {"secret": True}


async def test_server_side_subscription_from_token_channels(
    connect: Connect, rotary: Any, channel: str
) -> None:
    sdk = await connect(channels=[channel])
    ctx = await sdk.events.next("on_subscribed")
    assert ctx.channel == channel
    await rotary.api("publish", {"channel": channel, "data": {"server": "side"}})
    pub = await sdk.events.next("on_publication")
    assert pub.channel == channel
    assert unpayload(pub.pub.data) == {"server": "side"}


async def test_wrong_token_disconnects_without_reconnect(
    sdk_clients: SdkFactory, rotary: Any, make_token: TokenFactory, use_protobuf: bool
) -> None:
    bad = make_token({"sub": "42"}, secret="another-secret-that-is-also-long-enough-x")
    sdk = sdk_clients(rotary, use_protobuf=use_protobuf, token=bad, min_reconnect_delay=0.05)
    await sdk.client.connect()
    ctx = await sdk.events.next("on_disconnected")
    assert ctx.code == DISCONNECT_INVALID_TOKEN
    await asyncio.sleep(0.5)  # ten times the reconnect delay: a reconnect would have started
    assert sdk.client.state is ClientState.DISCONNECTED
    assert sdk.events.names().count("on_connecting") == 1
    assert "on_connected" not in sdk.events.names()


async def test_expired_token_is_refreshed_through_get_token(
    sdk_clients: SdkFactory, rotary: Any, make_token: TokenFactory, use_protobuf: bool
) -> None:
    fresh: list[str] = []

    async def get_token() -> str:
        fresh.append(make_token({"sub": "42", "exp": int(time.time()) + 3600}))
        return fresh[-1]

    expired = make_token({"sub": "42", "exp": int(time.time()) - 10})
    sdk = sdk_clients(
        rotary, use_protobuf=use_protobuf, token=expired, get_token=get_token, min_reconnect_delay=0.05
    )
    await sdk.client.connect()
    error = await sdk.events.next("on_error")
    assert isinstance(error.error, ReplyError)
    assert error.error.code == ERROR_TOKEN_EXPIRED
    await sdk.events.next("on_connected")
    assert len(fresh) == 1
    assert sdk.client.state is ClientState.CONNECTED
