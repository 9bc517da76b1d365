"""The dashboard example's hooks and sampler (examples/dashboard/app.py), tested with
rotary.testing.TestClient: no sockets, and injected clocks instead of waiting for the publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import rotary
from examples.dashboard.app import METRICS, Sampler, dashboard_node
from rotary.testing import TestClient


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def node() -> AsyncIterator[rotary.Node]:
    async with dashboard_node() as started:
        yield started


async def test_anyone_watches_the_metrics_and_nobody_publishes(node: rotary.Node) -> None:
    async with TestClient(node) as viewer:
        await viewer.subscribe(METRICS)
        with pytest.raises(rotary.PermissionDenied):
            await viewer.publish(METRICS, {"cpu_percent": 0})
        with pytest.raises(rotary.UnknownChannel):
            await viewer.subscribe("chat:lobby")


async def test_a_sample_reaches_viewers_and_history_keeps_two_minutes(node: rotary.Node) -> None:
    clock, cpu = Clock(), Clock()
    sampler = Sampler(node, clock=clock, cpu=cpu, wall=lambda: 1700000000.0)
    async with TestClient(node) as viewer:
        await viewer.subscribe(METRICS)
        clock.now, cpu.now = 2.0, 0.5
        await node.publish(METRICS, sampler.sample(lateness=0.003))
        sample = (await viewer.next_publication(METRICS)).json()
        assert sample == {
            "time": 1700000000000,
            "cpu_percent": 25.0,
            "loop_lag_ms": 3.0,
            "clients": 1,
            "load1": sample["load1"],
        }
        for _ in range(130):
            await node.publish(METRICS, sampler.sample())
        history = await viewer.history(METRICS, limit=-1)
        assert len(history.publications) == 120


async def test_a_viewer_back_from_a_dropped_connection_gets_the_samples_it_missed(
    node: rotary.Node,
) -> None:
    sampler = Sampler(node, clock=Clock(), cpu=Clock())
    async with TestClient(node) as viewer:
        position = (await viewer.subscribe(METRICS)).position
    for _ in range(3):
        await node.publish(METRICS, sampler.sample())
    async with TestClient(node) as viewer:
        again = await viewer.subscribe(METRICS, recover_since=position)
        assert again.recovered and len(again.publications) == 3
