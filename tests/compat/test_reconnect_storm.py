"""A reconnect storm: a node dies under its clients and comes back; they all return at once.

Two nodes share Redis. Every client (centrifuge-python) is connected to node A and subscribed with
recovery to one channel. A is killed (no goodbye), publications keep being accepted through node
B meanwhile, and A starts again on the same port. The clients reconnect together, and
``client.connection_rate_limit`` (smaller than the crowd) turns the excess away with 503 until the
SDKs' backoff brings them back. Every client ends up resubscribed with ``recovered: true`` and
every publication, once and in order: the storm is absorbed and nothing is lost.

The suite runs STORM_CLIENTS (40) clients, a quarter of them beyond the bucket; the reliability kit
runs more (``RELIABILITY_STORM_CLIENTS``, with ``RELIABILITY_STORM_TURNED_AWAY`` beyond the bucket). With
``RELIABILITY_RESULTS=<file>`` the figures are written there as JSON.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from centrifuge import SubscriptionState
from helpers import redis_servers
from helpers.cluster import eventually, redis_config, rotary_nodes, token
from helpers.env import raise_open_files
from helpers.traffic import assert_no_silent_loss

pytestmark = pytest.mark.compat

STORM_CLIENTS = int(os.environ.get("RELIABILITY_STORM_CLIENTS", "40"))
TURNED_AWAY = int(os.environ.get("RELIABILITY_STORM_TURNED_AWAY", str(STORM_CLIENTS // 4)))
"""Clients beyond the bucket: turned away with 503, they come back by the SDK's backoff as the bucket
regains a token a second (Centrifugo's rate), so they take about this many seconds."""
RATE_LIMIT = max(1, STORM_CLIENTS - TURNED_AWAY)
READY_TIMEOUT = 60.0
CONNECT_BATCH = 50
"""Clients connecting at once while the crowd is built (before the storm)."""
PUBLISHED_BEFORE = 5
PUBLISHED_WHILE_DOWN = 10


def stuck(waiting: list[tuple[Any, Any, Any]]) -> dict[str, int]:
    """How many clients are in each (client state, subscription state, last event, how the last
    subscribe went, newest seq received) combination: a client subscribed again without the last
    publication was either told (``recovered=False``) or lost it silently."""
    return dict(
        collections.Counter(
            f"{sdk.client.state.value}/{sub.state.value}/{events.seen[-1][0] if events.seen else '-'}"
            f"/{last_subscribe(events.seen)}/seq {newest_seq(events.seen)}"
            for sdk, sub, events in waiting
        )
    )


def last_subscribe(seen: list[tuple[str, Any]]) -> str:
    subscribed = [ctx for name, ctx in seen if name == "on_subscribed"]
    if not subscribed:
        return "never subscribed"
    ctx = subscribed[-1]
    return f"was_recovering={ctx.was_recovering} recovered={ctx.recovered}"


def newest_seq(seen: list[tuple[str, Any]]) -> Any:
    return max((ctx.pub.data["seq"] for name, ctx in seen if name == "on_publication"), default="-")


async def test_clients_of_a_dead_node_all_come_back_and_recover(tmp_path: Path, sdk_clients: Any) -> None:
    raise_open_files(STORM_CLIENTS + 1024)
    setup = redis_servers.start_standalone()
    config = redis_config(setup.processes[0].address, redis_servers.unique_prefix())
    channel = "chat:" + uuid.uuid4().hex[:12]
    try:
        with rotary_nodes(tmp_path, config, 2) as (node_a, node_b):

            async def join(index: int) -> tuple[Any, Any, Any]:
                # Upper bounds for a loaded machine: a node busy with a batch of connects reads
                # Redis late, and the SDK retries the subscribes that failed meanwhile.
                sdk = sdk_clients(node_a, token=token(f"user{index}"))
                await sdk.client.connect()
                await sdk.client.ready(timeout=READY_TIMEOUT)
                sub, events = sdk.subscription(channel, max_resubscribe_delay=0.5)
                await sub.subscribe()
                await sub.ready(timeout=READY_TIMEOUT)
                return sdk, sub, events

            crowd = []
            for start in range(0, STORM_CLIENTS, CONNECT_BATCH):
                batch = range(start, min(start + CONNECT_BATCH, STORM_CLIENTS))
                crowd.extend(await asyncio.gather(*(join(index) for index in batch)))
            accepted = []
            for seq in range(PUBLISHED_BEFORE):
                await node_b.api("publish", {"channel": channel, "data": {"seq": seq}})
                accepted.append(seq)
            node_a.kill()
            for seq in range(PUBLISHED_BEFORE, PUBLISHED_BEFORE + PUBLISHED_WHILE_DOWN):
                await node_b.api("publish", {"channel": channel, "data": {"seq": seq}})
                accepted.append(seq)
            node_a.config = {**config, "client": {**config["client"], "connection_rate_limit": RATE_LIMIT}}
            node_a.start()
            restarted = time.monotonic()
            last = {"seq": accepted[-1]}

            waiting = list(crowd)

            async def all_recovered() -> bool:
                waiting[:] = [
                    (sdk, sub, events)
                    for sdk, sub, events in waiting
                    if sub.state is not SubscriptionState.SUBSCRIBED
                    or not any(name == "on_publication" and ctx.pub.data == last for name, ctx in events.seen)
                ]
                return not waiting

            try:
                await eventually(
                    all_recovered, "every client recovered", timeout=STORM_CLIENTS + TURNED_AWAY + 30
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}; {len(waiting)} still waiting: {stuck(waiting)}") from None
            seconds = time.monotonic() - restarted
            for _, _, events in crowd:
                assert_no_silent_loss(events.seen, accepted, set())
                resubscribed = [
                    ctx for name, ctx in events.seen if name == "on_subscribed" and ctx.was_recovering
                ]
                assert resubscribed and all(ctx.recovered for ctx in resubscribed), resubscribed
            assert node_a.alive and node_b.alive
    finally:
        setup.stop()
    results = os.environ.get("RELIABILITY_RESULTS")
    if results:
        Path(results).write_text(
            json.dumps(
                {
                    "clients": STORM_CLIENTS,
                    "connection_rate_limit": RATE_LIMIT,
                    "turned_away_at_least": TURNED_AWAY,
                    "seconds_to_all_recovered": round(seconds, 1),
                    "published_while_down": PUBLISHED_WHILE_DOWN,
                    "lost": 0,
                }
            )
        )
