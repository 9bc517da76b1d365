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
from helpers.traffic import assert_no_silent_loss, insufficient_state, recovered_false

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


HISTORY_TTL = STORM_CLIENTS + TURNED_AWAY + 90
"""Seconds the channel keeps its history: longer than the storm may take. With the suite's 300 s a
500-client storm outlived the history, and the clients that came back after it were rightly told
``recovered: false`` (the publications were gone), which is not what a storm test measures."""


def told(seen: list[tuple[str, Any]]) -> bool:
    """Whether a subscription was told that it may have missed publications."""
    return any(recovered_false(name, ctx) or insufficient_state(name, ctx) for name, ctx in seen)


class Progress:
    """When each client was connected again and had the last publication (or was told), as seen by
    the poll, and why its connect attempts failed meanwhile: the figures that say where a storm's
    time goes (the rate limit's 503s, connect timeouts of a busy node, the SDK's backoff)."""

    def __init__(self, crowd: list[tuple[Any, Any, Any]], restarted: float) -> None:
        self.restarted = restarted
        self.marks = {id(sdk): (len(sdk.events.seen), len(events.seen)) for sdk, _, events in crowd}
        self.connected: dict[int, float] = {}
        self.done: dict[int, float] = {}

    def since_restart(self, sdk: Any, events: Any) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        client_mark, sub_mark = self.marks[id(sdk)]
        return sdk.events.seen[client_mark:], events.seen[sub_mark:]

    def poll(self, crowd: list[tuple[Any, Any, Any]], last: dict[str, int]) -> list[tuple[Any, Any, Any]]:
        """Notes the news of this poll; the clients not done yet."""
        now = time.monotonic() - self.restarted
        waiting = []
        for sdk, sub, events in crowd:
            key = id(sdk)
            if key in self.done:
                continue
            client_seen, sub_seen = self.since_restart(sdk, events)
            if key not in self.connected and any(name == "on_connected" for name, _ in client_seen):
                self.connected[key] = now
            has_last = any(name == "on_publication" and ctx.pub.data == last for name, ctx in sub_seen)
            if sub.state is SubscriptionState.SUBSCRIBED and (has_last or told(sub_seen)):
                self.done[key] = now
            else:
                waiting.append((sdk, sub, events))
        return waiting

    def figures(self, crowd: list[tuple[Any, Any, Any]]) -> dict[str, Any]:
        failures: collections.Counter[str] = collections.Counter()
        drops: collections.Counter[str] = collections.Counter()
        for sdk, _, events in crowd:
            client_seen, _ = self.since_restart(sdk, events)
            for name, ctx in client_seen:
                if name == "on_error":
                    failures[f"{type(ctx.error).__name__}: {str(ctx.error)[:60]}"] += 1
                elif name in ("on_connecting", "on_disconnected"):
                    drops[f"{name} {ctx.code} {ctx.reason}"] += 1
        connected = sorted(self.connected.values())

        def share(at: float) -> int:
            return sum(1 for t in connected if t <= at)

        return {
            "reconnected": len(connected),
            "reconnected_within_s": {str(s): share(s) for s in (5, 10, 30, 60, 120, 300)},
            "reconnect_seconds_p50_p90_max": [
                round(connected[int(q * (len(connected) - 1))], 1) for q in (0.5, 0.9, 1.0)
            ]
            if connected
            else [],
            "failed_connect_attempts": sum(failures.values()),
            "failed_connect_attempts_by_error": dict(failures.most_common(6)),
            "connection_ends_by_code": dict(drops.most_common(6)),
            "told": sum(1 for _, _, events in crowd if told(events.seen)),
        }


def stuck(waiting: list[tuple[Any, Any, Any]]) -> dict[str, int]:
    """How many clients are in each (client state, subscription state, last event, how the last
    subscribe went, newest seq received) combination: a client subscribed again without the last
    publication was either told (``recovered=False``) or lost it silently."""
    return dict(
        collections.Counter(
            f"{sdk.client.state.value}/{sub.state.value}/{events.seen[-1][0] if events.seen else '-'}"
            f"/{last_subscribe(events.seen)}/seq {newest_seq(events.seen)}"
            f"/{'told' if told(events.seen) else 'not told'}"
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
    for namespace in config["channel"]["namespaces"]:
        namespace["history_ttl"] = f"{HISTORY_TTL}s"
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
            progress = Progress(crowd, restarted)

            async def all_recovered() -> bool:
                waiting[:] = progress.poll(waiting, last)
                return not waiting

            try:
                await eventually(
                    all_recovered, "every client recovered", timeout=STORM_CLIENTS + TURNED_AWAY + 30
                )
            except AssertionError as exc:
                figures = progress.figures(crowd)
                raise AssertionError(
                    f"{exc}; {len(waiting)} still waiting: {stuck(waiting)}; {figures}"
                ) from None
            seconds = time.monotonic() - restarted
            figures = progress.figures(crowd)
            print(f"storm of {STORM_CLIENTS}: {seconds:.1f} s to all recovered; {figures}")
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
                    **figures,
                }
            )
        )
