"""Rotary nodes outlive their Redis: killed during traffic and restarted, or hanging.

While Redis is away the processes keep running, server API calls fail fast with Centrifugo's
internal error (code 100) and client commands get temporary errors. Once Redis is back, clients that
stayed connected receive the publications accepted after the restart, and a client that recovers
across the outage is told the truth: the restarted Redis lost the stream, so the epoch changed and
recovery reports ``recovered: false`` (https://centrifugal.dev/docs/server/history_and_recovery,
https://centrifugal.dev/docs/server/engines#redis-engine).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from centrifuge import ReplyError, SubscriptionState
from helpers import redis_servers
from helpers.cluster import (
    RotaryNode,
    connected,
    eventually,
    next_where,
    redis_config,
    rotary_nodes,
    subscribed,
)
from helpers.redis_servers import RedisProcess

pytestmark = pytest.mark.compat

INTERNAL_ERROR = {"code": 100, "message": "internal server error"}
FAIL_FAST = 2.5
"""Seconds an API call may take while Redis is away: the 1 s io_timeout and some slack, never a hang."""


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    """A redis-server of this test alone (persistence off: a restart loses every key)."""
    setup = redis_servers.start_standalone()
    yield setup.processes[0]
    setup.stop()


@pytest.fixture
def two_nodes(redis: RedisProcess, tmp_path: Path) -> Iterator[list[RotaryNode]]:
    config = redis_config(redis.address, redis_servers.unique_prefix())
    with rotary_nodes(tmp_path, config, 2) as nodes:
        yield nodes


def channel_name() -> str:
    return "chat:" + uuid.uuid4().hex[:12]


async def timed_call(node: RotaryNode, method: str, payload: dict[str, Any]) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    body = await node.call(method, payload)
    return body, time.monotonic() - began


async def publish_once_accepted(node: RotaryNode, channel: str, data: Any) -> int:
    """Publishes through the API, retrying while Redis still refuses; the accepted offset."""
    deadline = time.monotonic() + 10
    while True:
        body = await node.call("publish", {"channel": channel, "data": data})
        if "result" in body:
            return int(body["result"]["offset"])
        assert body["error"] == INTERNAL_ERROR
        assert time.monotonic() < deadline, "publishing never succeeded after Redis came back"
        await asyncio.sleep(0.05)


async def assert_fails_fast(nodes: list[RotaryNode], channel: str) -> None:
    calls = [
        ("publish", {"channel": channel, "data": {"lost": True}}),
        ("history", {"channel": channel, "limit": -1}),
        ("presence", {"channel": channel}),
    ]
    for node in nodes:
        for method, payload in calls:
            body, elapsed = await timed_call(node, method, payload)
            assert body == {"error": INTERNAL_ERROR}, (method, body)
            assert elapsed < FAIL_FAST, (method, elapsed)


async def assert_client_commands_fail_temporarily(sub: Any) -> None:
    for command in (sub.publish({"lost": True}), sub.history(limit=10), sub.presence()):
        with pytest.raises(ReplyError) as caught:
            await command
        assert (caught.value.code, caught.value.temporary) == (100, True)


def received_after(events: Any, mark: int) -> list[Any]:
    """The event records of a subscription's log from index ``mark`` on."""
    return events.seen[mark:]


def assert_no_silent_loss(records: list[tuple[str, Any]], accepted: list[tuple[int, Any]]) -> None:
    """Every publication accepted after the restart reached the subscriber in order, except those
    before a resubscription that reported ``recovered: false``, which is how a client learns it
    must reload its state."""
    delivered = [(ctx.pub.offset, ctx.pub.data) for name, ctx in records if name == "on_publication"]
    resyncs = [ctx for name, ctx in records if name == "on_subscribed"]
    missing = accepted[: len(accepted) - len(delivered)]
    assert delivered == accepted[len(missing):], f"delivered {delivered}, accepted {accepted}"
    if missing:
        assert resyncs and all(ctx.was_recovering and not ctx.recovered for ctx in resyncs), (
            f"{missing} never arrived, and the client was not told its state was lost: {records}"
        )


async def test_redis_killed_during_traffic_and_restarted(
    redis: RedisProcess, two_nodes: list[RotaryNode], sdk_clients: Any
) -> None:
    channel = channel_name()
    stayers = [await connected(sdk_clients, node, f"stayer{i}") for i, node in enumerate(two_nodes)]
    subscriptions = [await subscribed(sdk, channel, max_resubscribe_delay=0.5) for sdk in stayers]
    leaver = await connected(sdk_clients, two_nodes[0], "leaver")
    _, leaver_events = await subscribed(leaver, channel)
    assert not (await leaver_events.next("on_subscribed")).was_recovering
    for number in range(3):
        await two_nodes[number % 2].api("publish", {"channel": channel, "data": {"before": number}})
    for _, events in [*subscriptions, (None, leaver_events)]:
        assert [(await events.next("on_publication")).pub.offset for _ in range(3)] == [1, 2, 3]
    await leaver.client.disconnect()

    redis.kill()
    await assert_fails_fast(two_nodes, channel)
    await assert_client_commands_fail_temporarily(subscriptions[0][0])
    late = await connected(sdk_clients, two_nodes[1], "late")
    late_sub, late_events = late.subscription(channel, max_resubscribe_delay=0.5)
    await late_sub.subscribe()
    marks = [len(events.seen) for _, events in subscriptions]
    assert all(node.alive for node in two_nodes)

    redis.start()
    accepted = []
    for number in range(6):
        data = {"after": number}
        accepted.append((await publish_once_accepted(two_nodes[number % 2], channel, data), data))
        await asyncio.sleep(0.3)
    assert [offset for offset, _ in accepted] == [1, 2, 3, 4, 5, 6], "the restarted Redis starts a new stream"

    await late_sub.ready(timeout=10)
    for (sub, events), mark in zip(subscriptions, marks, strict=True):
        async def settled(sub: Any = sub, events: Any = events) -> bool:
            return sub.state is SubscriptionState.SUBSCRIBED and any(
                name == "on_publication" and ctx.pub.data == accepted[-1][1] for name, ctx in events.seen
            )

        await eventually(settled, "the last publication reached a client that stayed connected")
        assert_no_silent_loss(received_after(events, mark), accepted)

    await leaver.client.connect()
    resubscribed = await leaver_events.next("on_subscribed")
    assert (resubscribed.was_recovering, resubscribed.recovered) == (True, False)
    await two_nodes[1].api("publish", {"channel": channel, "data": {"final": True}})
    for events in [leaver_events, late_events, *(events for _, events in subscriptions)]:
        await next_where(events, "on_publication", lambda ctx: ctx.pub.data == {"final": True})
    assert all(node.alive for node in two_nodes)

async def test_a_hanging_redis_fails_api_calls_within_the_io_timeout(
    redis: RedisProcess, two_nodes: list[RotaryNode], sdk_clients: Any
) -> None:
    channel = channel_name()
    sdk = await connected(sdk_clients, two_nodes[0], "reader")
    _, events = await subscribed(sdk, channel)
    assert redis.process is not None
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        await assert_fails_fast(two_nodes[:1], channel)
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)

    offset = await publish_once_accepted(two_nodes[1], channel, {"after": "hang"})
    ctx = await events.next("on_publication", timeout=8)
    assert (ctx.pub.offset, ctx.pub.data) == (offset, {"after": "hang"})
