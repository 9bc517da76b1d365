"""Redis killed and paused again and again under steady traffic: nothing accepted is lost silently,
no rotary process dies, and their memory stays flat.

Two nodes share one redis-server (persistence off, so a kill loses the streams); four subscribers
(two per node) with recovery read one channel while the API publishes to alternate nodes. Each
cycle either kills Redis and starts it again, or stops it with SIGSTOP and resumes it, and waits
for publishing to fail and then to work again. At the end every subscriber has every accepted
publication, once and in order, except where a resubscription told it ``recovered: false``.

The suite runs FAULT_CYCLES (3) cycles; the reliability kit runs 10
(``ROTARY_FAULT_CYCLES=10``, see reliability/). With ``ROTARY_RELIABILITY_RESULTS=<file>`` the
figures are written there as JSON for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from centrifuge import SubscriptionState
from helpers import redis_servers
from helpers.cluster import RotaryNode, connected, eventually, redis_config, rotary_nodes, subscribed
from helpers.redis_servers import RedisProcess
from helpers.traffic import Traffic, assert_no_silent_loss

pytestmark = pytest.mark.compat

FAULT_CYCLES = int(os.environ.get("ROTARY_FAULT_CYCLES", "3"))
MEMORY_GROWTH = 1.25
"""Largest RSS at the end over RSS after the first cycle (Python's allocator keeps some pages)."""
MEMORY_SLACK = 8 << 20
"""Bytes of growth allowed on top, for a small process whose first-cycle RSS is low."""


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    setup = redis_servers.start_standalone()
    yield setup.processes[0]
    setup.stop()


@pytest.fixture
def two_nodes(redis: RedisProcess, tmp_path: Path) -> Iterator[list[RotaryNode]]:
    config = redis_config(redis.address, redis_servers.unique_prefix())
    with rotary_nodes(tmp_path, config, 2) as nodes:
        yield nodes


def rss(node: RotaryNode) -> int:
    assert node.process is not None
    for line in Path(f"/proc/{node.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def kill_and_restart(redis: RedisProcess) -> tuple[Any, Any]:
    return redis.kill, redis.start


def pause_and_resume(redis: RedisProcess) -> tuple[Any, Any]:
    def pause() -> None:
        assert redis.process is not None
        os.kill(redis.process.pid, signal.SIGSTOP)

    def resume() -> None:
        assert redis.process is not None
        os.kill(redis.process.pid, signal.SIGCONT)

    return pause, resume


FAULTS = (("kill", kill_and_restart), ("pause", pause_and_resume))


async def test_redis_killed_and_paused_in_cycles(
    redis: RedisProcess, two_nodes: list[RotaryNode], sdk_clients: Any
) -> None:
    channel = "chat:" + uuid.uuid4().hex[:12]
    clients = [await connected(sdk_clients, node, f"reader{i}") for i, node in enumerate(two_nodes * 2)]
    subscriptions = [await subscribed(sdk, channel, max_resubscribe_delay=0.5) for sdk in clients]
    traffic = Traffic(two_nodes, channel)
    publisher = asyncio.create_task(traffic.run())
    began = time.monotonic()
    memory_after_first: list[int] = []
    try:
        await traffic.until("publications flow", lambda: len(traffic.accepted) >= 5)
        for cycle in range(FAULT_CYCLES):
            name, fault = FAULTS[cycle % len(FAULTS)]
            break_it, repair = fault(redis)
            refused = len(traffic.refused)
            break_it()
            await traffic.until(
                f"cycle {cycle} ({name}): publishing fails",
                lambda refused=refused: len(traffic.refused) >= refused + 2,
            )
            repair()
            accepted = len(traffic.accepted)
            await traffic.until(
                f"cycle {cycle} ({name}): publishing works again",
                lambda accepted=accepted: len(traffic.accepted) >= accepted + 5,
            )
            assert all(node.alive for node in two_nodes), f"a node died in cycle {cycle} ({name})"
            if cycle == 0:
                memory_after_first = [rss(node) for node in two_nodes]
    finally:
        traffic.stop()
        await publisher

    accepted = [seq for seq, _ in traffic.accepted]
    last = {"seq": accepted[-1]}
    for sub, events in subscriptions:

        async def settled(sub: Any = sub, events: Any = events) -> bool:
            return sub.state is SubscriptionState.SUBSCRIBED and any(
                name == "on_publication" and ctx.pub.data == last for name, ctx in events.seen
            )

        await eventually(settled, "the last publication reached every subscriber", timeout=20)
        assert_no_silent_loss(events.seen, accepted, traffic.refused)
    memory_at_end = [rss(node) for node in two_nodes]
    for first, end in zip(memory_after_first, memory_at_end, strict=True):
        assert end <= first * MEMORY_GROWTH + MEMORY_SLACK, (memory_after_first, memory_at_end)
    told = sum(
        1
        for _, events in subscriptions
        for name, ctx in events.seen
        if name == "on_subscribed" and ctx.was_recovering and not ctx.recovered
    )
    results = os.environ.get("ROTARY_RELIABILITY_RESULTS")
    if results:
        Path(results).write_text(
            json.dumps(
                {
                    "engine": "redis",
                    "cycles": FAULT_CYCLES,
                    "seconds": round(time.monotonic() - began, 1),
                    "accepted": len(accepted),
                    "refused": len(traffic.refused),
                    "subscribers": len(subscriptions),
                    "lost_silently": 0,
                    "told_recovered_false": told,
                    "rss_after_first_cycle_mib": [round(m / 2**20, 1) for m in memory_after_first],
                    "rss_at_end_mib": [round(m / 2**20, 1) for m in memory_at_end],
                }
            )
        )
