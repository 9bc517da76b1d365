"""Redis and NATS killed and paused again and again under steady traffic: nothing accepted is lost
silently, no rotary process dies, and their memory stays flat.

Two nodes share one redis-server (persistence off, so a kill loses the streams) or one nats-server;
four subscribers (two per node) read one channel while the API publishes to alternate nodes. Each
cycle either kills the server and starts it again, or stops it with SIGSTOP and resumes it, and
waits for the fault to bite (publishing fails, or for a pause of NATS, whose client buffers, some
publications were accepted meanwhile) and then for publishing to work again. At the end every
subscriber has every accepted publication, once and in order, except where it was told it may
have missed some:

- Redis keeps history, so the subscribers use recovery and the word is a resubscription that says
  ``recovered: false`` (https://centrifugal.dev/docs/server/history_and_recovery).
- NATS keeps nothing (https://centrifugal.dev/docs/server/engines#nats-broker: at most once, no
  history or recovery); Centrifugo lets its subscribers miss what was published while a node was
  cut off, without a word. rotary's nodes unsubscribe their subscribers with 2500 (insufficient
  state) as soon as their NATS connection breaks; the SDK resubscribes once the node is back, and
  that resubscription is the word.

The suite runs FAULT_CYCLES (3) cycles; the reliability kit runs 10
(``RELIABILITY_FAULT_CYCLES=10``, see reliability/). With ``RELIABILITY_RESULTS=<file>`` the
figures are written there as JSON for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from centrifuge import SubscriptionState
from helpers import redis_servers
from helpers.cluster import (
    RotaryNode,
    connected,
    eventually,
    nats_config,
    redis_config,
    rotary_nodes,
    subscribed,
)
from helpers.nats_server import NatsServer, nats_server
from helpers.netns import NetworkLink, isolated_link
from helpers.redis_servers import RedisProcess
from helpers.traffic import (
    Traffic,
    assert_no_silent_loss,
    insufficient_state,
    last_events,
    recovered_false,
)

pytestmark = pytest.mark.compat

FAULT_CYCLES = int(os.environ.get("RELIABILITY_FAULT_CYCLES", "3"))
MEMORY_GROWTH = 1.25
"""Largest RSS at the end over RSS after the first cycle (Python's allocator keeps some pages)."""
MEMORY_SLACK = 8 << 20
"""Bytes of growth allowed on top, for a small process whose first-cycle RSS is low."""


@dataclass(frozen=True)
class Fault:
    """One way to break the server and repair it, and how the traffic shows that it bit."""

    name: str
    break_it: Callable[[], None]
    repair: Callable[[], None]
    bitten: Callable[[Traffic], Callable[[], bool]]
    """Given the traffic before the fault, a check that holds once the fault showed."""


def publishing_fails(traffic: Traffic) -> Callable[[], bool]:
    refused = len(traffic.refused)
    return lambda: len(traffic.refused) >= refused + 2


def accepted_meanwhile(traffic: Traffic) -> Callable[[], bool]:
    """A paused nats-server leaves the TCP connections open: nats-py buffers what is published and
    the server forwards it once resumed, so publishing goes on; the check is that some did."""
    accepted = len(traffic.accepted)
    return lambda: len(traffic.accepted) >= accepted + 5


def signal_fault(pid: Callable[[], int]) -> tuple[Callable[[], None], Callable[[], None]]:
    return (lambda: os.kill(pid(), signal.SIGSTOP)), (lambda: os.kill(pid(), signal.SIGCONT))


def redis_faults(redis: RedisProcess) -> list[Fault]:
    def pid() -> int:
        assert redis.process is not None
        return redis.process.pid

    pause, resume = signal_fault(pid)
    return [
        Fault("kill", redis.kill, redis.start, publishing_fails),
        Fault("pause", pause, resume, publishing_fails),
    ]


def nats_faults(nats: NatsServer) -> list[Fault]:
    return [
        Fault("kill", nats.kill, nats.start, publishing_fails),
        Fault("pause", nats.pause, nats.resume, accepted_meanwhile),
    ]


def partition_faults(link: NetworkLink, shaping: list[str]) -> list[Fault]:
    """The link cut and restored, then made slow and lossy for a while (``shaping`` records how)."""
    return [
        Fault("partition", link.cut, link.restore, publishing_fails),
        Fault("slow link", lambda: shaping.append(link.slow()), link.clear, accepted_meanwhile),
    ]


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    setup = redis_servers.start_standalone()
    yield setup.processes[0]
    setup.stop()


@pytest.fixture
def nats() -> Iterator[NatsServer]:
    with nats_server() as running:
        yield running


def rss(node: RotaryNode) -> int:
    assert node.process is not None
    for line in Path(f"/proc/{node.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


async def test_redis_killed_and_paused_in_cycles(
    redis: RedisProcess, tmp_path: Path, sdk_clients: Any
) -> None:
    config = redis_config(redis.address, redis_servers.unique_prefix())
    with rotary_nodes(tmp_path, config, 2) as nodes:
        await cycle_faults("redis", nodes, redis_faults(redis), sdk_clients, recovered_false)


async def test_redis_partitioned_and_slowed_in_cycles(tmp_path: Path, sdk_clients: Any) -> None:
    """Redis in a network namespace of its own behind a veth pair: the link is cut and restored,
    or slowed (delay and loss), while the nodes on this side keep serving."""
    with isolated_link() as link:
        redis = RedisProcess.behind(link)
        redis.start()
        try:
            config = redis_config(redis.address, redis_servers.unique_prefix())
            shaping: list[str] = []
            with rotary_nodes(tmp_path, config, 2) as nodes:
                faults = partition_faults(link, shaping)
                notes = {"slow_link": shaping}
                await cycle_faults(
                    "redis partitioned", nodes, faults, sdk_clients, recovered_false, notes=notes
                )
        finally:
            redis.remove()


async def test_nats_killed_and_paused_in_cycles(nats: NatsServer, tmp_path: Path, sdk_clients: Any) -> None:
    with rotary_nodes(tmp_path, nats_config(nats.url), 2) as nodes:
        await cycle_faults("nats", nodes, nats_faults(nats), sdk_clients, insufficient_state, len(nodes))


async def cycle_faults(
    engine: str,
    nodes: list[RotaryNode],
    faults: list[Fault],
    sdk_clients: Any,
    told_by: Callable[[str, Any], bool],
    publishers: int = 1,
    notes: dict[str, Any] | None = None,
) -> None:
    channel = "chat:" + uuid.uuid4().hex[:12]
    clients = [await connected(sdk_clients, node, f"reader{i}") for i, node in enumerate(nodes * 2)]
    subscriptions = [await subscribed(sdk, channel, max_resubscribe_delay=0.5) for sdk in clients]
    traffic = Traffic(nodes, channel)
    publisher = asyncio.create_task(traffic.run())
    began = time.monotonic()
    memory_after_first: list[int] = []
    try:
        await traffic.until("publications flow", lambda: len(traffic.accepted) >= 5)
        for cycle in range(FAULT_CYCLES):
            fault = faults[cycle % len(faults)]
            bitten = fault.bitten(traffic)
            fault.break_it()
            try:
                await traffic.until(f"cycle {cycle} ({fault.name}): the fault shows", bitten)
            finally:
                fault.repair()
            accepted = len(traffic.accepted)
            await traffic.until(
                f"cycle {cycle} ({fault.name}): publishing works again",
                lambda accepted=accepted: len(traffic.accepted) >= accepted + 5,
            )
            assert all(node.alive for node in nodes), f"a node died in cycle {cycle} ({fault.name})"
            if cycle == 0:
                memory_after_first = [rss(node) for node in nodes]
    finally:
        traffic.stop()
        await publisher

    async def all_subscribed() -> bool:
        return all(sub.state is SubscriptionState.SUBSCRIBED for sub, _ in subscriptions)

    await eventually(all_subscribed, "every subscriber is subscribed again", timeout=20)
    await traffic.last_round()
    accepted = [seq for seq, _ in traffic.accepted]
    lasts = [{"seq": max(seq for seq in accepted if seq % publishers == p)} for p in range(publishers)]
    for sub, events in subscriptions:

        async def settled(sub: Any = sub, events: Any = events) -> bool:
            arrived = [ctx.pub.data for name, ctx in events.seen if name == "on_publication"]
            return sub.state is SubscriptionState.SUBSCRIBED and all(last in arrived for last in lasts)

        try:
            await eventually(settled, "the last publications reached every subscriber", timeout=20)
        except AssertionError as timed_out:  # say which subscriber, and what it saw last
            raise AssertionError(
                f"{timed_out}: waiting for {lasts} in state {sub.state}, after {last_events(events.seen)}"
            ) from None
        assert_no_silent_loss(events.seen, accepted, traffic.refused, told_by, publishers)
    memory_at_end = [rss(node) for node in nodes]
    for first, end in zip(memory_after_first, memory_at_end, strict=True):
        assert end <= first * MEMORY_GROWTH + MEMORY_SLACK, (memory_after_first, memory_at_end)
    told = sum(1 for _, events in subscriptions for name, ctx in events.seen if told_by(name, ctx))
    results = os.environ.get("RELIABILITY_RESULTS")
    if results:
        Path(results).write_text(
            json.dumps(
                {
                    "engine": engine,
                    "faults": [fault.name for fault in faults],
                    **(notes or {}),
                    "cycles": FAULT_CYCLES,
                    "seconds": round(time.monotonic() - began, 1),
                    "accepted": len(accepted),
                    "refused": len(traffic.refused),
                    "subscribers": len(subscriptions),
                    "lost_silently": 0,
                    "told": told,
                    "told_by": told_by.__name__,
                    "rss_after_first_cycle_mib": [round(m / 2**20, 1) for m in memory_after_first],
                    "rss_at_end_mib": [round(m / 2**20, 1) for m in memory_at_end],
                }
            )
        )
