"""Rotary nodes outlive their Redis: killed during traffic and restarted, or hanging.

While Redis is away the processes keep running, server API calls fail fast with Centrifugo's
internal error (code 100) and client commands get temporary errors. Once Redis is back publishing
works again and nothing is lost silently. The restarted Redis lost the stream, so it starts over
under a new epoch; a client that stayed connected gets every accepted publication once and in
order until the first one of the new epoch reaches it, which makes it resubscribe and learn
``recovered: false``, the signal to reload its state; from then on it gets every publication
again. A client that reconnects with recovery after the outage learns the same
(https://centrifugal.dev/docs/server/history_and_recovery,
https://centrifugal.dev/docs/server/engines#redis-engine)."""

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
from helpers.traffic import FAIL_FAST, INTERNAL_ERROR, Traffic, assert_no_silent_loss, timed_call

pytestmark = pytest.mark.compat


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


async def test_redis_killed_during_traffic_and_restarted(
    redis: RedisProcess, two_nodes: list[RotaryNode], sdk_clients: Any
) -> None:
    channel = channel_name()
    stayers = [await connected(sdk_clients, node, f"stayer{i}") for i, node in enumerate(two_nodes)]
    subscriptions = [await subscribed(sdk, channel, max_resubscribe_delay=0.5) for sdk in stayers]
    leaver = await connected(sdk_clients, two_nodes[0], "leaver")
    _, leaver_events = await subscribed(leaver, channel)
    assert not (await leaver_events.next("on_subscribed")).was_recovering
    traffic = Traffic(two_nodes, channel)
    publisher = asyncio.create_task(traffic.run())
    try:
        await traffic.until("publications flow", lambda: len(traffic.accepted) >= 5)
        await leaver.client.disconnect()

        redis.kill()
        before_outage = len(traffic.accepted)
        await traffic.until("publishing fails while Redis is down", lambda: len(traffic.refused) >= 3)
        await assert_fails_fast(two_nodes, channel)
        await assert_client_commands_fail_temporarily(subscriptions[0][0])
        late = await connected(sdk_clients, two_nodes[1], "late")
        late_sub, late_events = late.subscription(channel, max_resubscribe_delay=0.5)
        await late_sub.subscribe()
        assert all(node.alive for node in two_nodes)

        redis.start()
        after_restart = len(traffic.accepted)
        await traffic.until("publishing works again", lambda: len(traffic.accepted) >= after_restart + 15)
    finally:
        traffic.stop()
        await publisher
    assert traffic.accepted[after_restart][1] == 1, "the restarted Redis lost the stream: offsets start over"
    assert before_outage >= 5

    accepted = [seq for seq, _ in traffic.accepted]
    await late_sub.ready(timeout=10)
    last = {"seq": accepted[-1]}
    for sub, events in subscriptions:

        async def settled(sub: Any = sub, events: Any = events) -> bool:
            return sub.state is SubscriptionState.SUBSCRIBED and any(
                name == "on_publication" and ctx.pub.data == last for name, ctx in events.seen
            )

        await eventually(settled, "the last publication reached a client that stayed connected")
        assert_no_silent_loss(events.seen, accepted, traffic.refused)

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
