"""Nothing accepted is lost when a subscription ends, as the official SDKs see it, JSON and Protobuf.

The backend sends one HTTP API `batch`: a publication, then the end of the subscription (a server
unsubscribe, or a disconnect with a reconnect code). Centrifugo delivers the publication first, every
time; so must rotary. The disconnect case is checked by order: the publication must come before the
subscription starts subscribing again, since recovery would otherwise bring it back afterwards.
See https://centrifugal.dev/docs/server/server_api#batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import RotaryServer, SdkFactory, unique_channel
from test_sdk_state_js import run_script

pytestmark = pytest.mark.compat

ROUNDS = 10
"""Rounds per test: the rule holds every time, not by luck of timing."""


@pytest.fixture(params=[False, True], ids=["json", "protobuf"])
def use_protobuf(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def publish_then(channel: str, end: dict[str, Any], n: int) -> dict[str, Any]:
    return {"commands": [{"publish": {"channel": channel, "data": {"n": n}}}, end]}


async def test_publication_arrives_before_the_server_unsubscribe(
    sdk_clients: SdkFactory, rotary: RotaryServer, make_token: Callable[..., str], use_protobuf: bool
) -> None:
    user = "u-" + unique_channel().split(":")[1]
    sdk = sdk_clients(rotary, use_protobuf=use_protobuf, token=make_token({"sub": user}))
    await sdk.client.connect()
    for n in range(ROUNDS):
        channel = unique_channel()
        sub, events = sdk.subscription(channel)
        await sub.subscribe()
        await sub.ready(timeout=5)
        unsubscribe = {"unsubscribe": {"user": user, "channel": channel}}
        await rotary.api("batch", publish_then(channel, unsubscribe, n))
        await events.next("on_unsubscribed")
        names = [name for name in events.names() if name in ("on_publication", "on_unsubscribed")]
        assert names == ["on_publication", "on_unsubscribed"], f"round {n}: {events.names()}"
        sdk.client.remove_subscription(sub)


async def test_publication_arrives_before_the_disconnect(
    sdk_clients: SdkFactory, rotary: RotaryServer, make_token: Callable[..., str], use_protobuf: bool
) -> None:
    user = "d-" + unique_channel().split(":")[1]
    sdk = sdk_clients(
        rotary, use_protobuf=use_protobuf, token=make_token({"sub": user}), min_reconnect_delay=0.05
    )
    await sdk.client.connect()
    channel = unique_channel()
    sub, events = sdk.subscription(channel)
    await sub.subscribe()
    await sub.ready(timeout=5)
    await events.next("on_subscribing")  # the first subscribe's events
    await events.next("on_subscribed")
    for n in range(ROUNDS):
        await sdk.client.ready(timeout=5)
        await sub.ready(timeout=5)
        disconnect = {"disconnect": {"user": user, "disconnect": {"code": 4001, "reason": "again"}}}
        await rotary.api("batch", publish_then(channel, disconnect, n))
        await events.next("on_subscribing")
        await events.next("on_subscribed")
        tail = [name for name in events.names() if name in ("on_publication", "on_subscribing")][-2:]
        assert tail == ["on_publication", "on_subscribing"], f"round {n}: {events.names()}"
    ctxs = [await events.next("on_publication") for _ in range(ROUNDS)]
    assert [ctx.pub.offset for ctx in ctxs] == list(range(1, ROUNDS + 1))


@pytest.fixture(params=["json", "protobuf"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def js_scenario(node: str, rotary: RotaryServer, protocol: str) -> Callable[[str], Any]:
    return lambda name: run_script(node, rotary, protocol, name, ROTARY_ROUNDS=str(ROUNDS))


def test_npm_sdk_gets_the_publication_before_unsubscribe_and_disconnect(
    js_scenario: Callable[[str], Any],
) -> None:
    seen = js_scenario("end_of_subscription")
    assert seen["unsubscribe"] == [["publication", "unsubscribed"]] * ROUNDS
    assert seen["disconnect"] == [["publication", "subscribing"]] * ROUNDS
