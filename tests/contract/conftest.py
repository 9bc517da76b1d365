"""Fixtures that run each engine contract suite against every implementation.

Adding an implementation (Redis, NATS, ...) takes one async context manager and one dict entry:

- a broker: write ``async def redis_broker() -> AsyncIterator[BrokerRig]`` under
  ``@contextlib.asynccontextmanager`` that starts from an empty store (its own server on a free
  port, or a unique key prefix), yields ``BrokerRig(broker, advance=..., settle=...)`` and cleans up;
  then add ``"redis": redis_broker`` to ``BROKERS``. ``advance`` moves the engine's time forward
  (a fake clock for memory, a real ``asyncio.sleep`` for a server); ``settle`` waits until events
  already published have reached the handler (nothing to wait for in memory).
  A broker without history (NATS) runs the tests not marked ``history`` only.
- a presence manager: the same with ``PresenceRig`` and ``PRESENCE_MANAGERS``.

The fixtures start the broker with a fresh ``RecordingHandler`` and close it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import pytest
from helpers import redis_servers
from helpers.nats_server import nats_server

from rotary.engines.base import Broker, PresenceManager, StreamPosition
from rotary.engines.memory import MemoryBroker, MemoryPresenceManager
from rotary.engines.nats import NatsBroker, NatsOptions
from rotary.engines.redis import RedisBroker, RedisBrokerOptions, RedisPresenceManager, RedisPresenceOptions
from rotary.protocol import pb


@dataclass(frozen=True, slots=True)
class PublicationEvent:
    channel: str
    pub: pb.Publication
    position: StreamPosition
    delta: bool
    prev: pb.Publication | None


@dataclass(frozen=True, slots=True)
class JoinEvent:
    channel: str
    info: pb.ClientInfo


@dataclass(frozen=True, slots=True)
class LeaveEvent:
    channel: str
    info: pb.ClientInfo


Event: TypeAlias = PublicationEvent | JoinEvent | LeaveEvent


@dataclass(slots=True)
class RecordingHandler:
    """A BrokerEventHandler that keeps every event, in arrival order, and lets a test await them."""

    events: list[Event] = field(default_factory=list)
    interrupted: list[list[str]] = field(default_factory=list)
    """The channels of every ``handle_interrupted`` call, in order."""
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def handle_publication(
        self,
        channel: str,
        pub: pb.Publication,
        position: StreamPosition,
        delta: bool,
        prev: pb.Publication | None,
    ) -> None:
        self._record(PublicationEvent(channel, pub, position, delta, prev))

    def handle_join(self, channel: str, info: pb.ClientInfo) -> None:
        self._record(JoinEvent(channel, info))

    def handle_resubscribed(self, positions: Mapping[str, StreamPosition]) -> None:
        """Position reports after a reconnect are not part of what these suites check."""

    def handle_leave(self, channel: str, info: pb.ClientInfo) -> None:
        self._record(LeaveEvent(channel, info))

    def handle_interrupted(self, channels: Sequence[str]) -> None:
        self.interrupted.append(sorted(channels))

    @property
    def publications(self) -> list[PublicationEvent]:
        return [event for event in self.events if isinstance(event, PublicationEvent)]

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Event]:
        """Waits until at least ``count`` events arrived; brokers with a network deliver later."""
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.events

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self._arrived.set()


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds


async def _nothing_in_flight() -> None:
    """Memory delivers inside publish, so nothing is ever in flight."""


@dataclass(frozen=True, slots=True)
class BrokerRig:
    broker: Broker
    advance: Callable[[float], Awaitable[None]]
    settle: Callable[[], Awaitable[None]] = _nothing_in_flight


@dataclass(frozen=True, slots=True)
class PresenceRig:
    presence_manager: PresenceManager


@contextlib.asynccontextmanager
async def memory_broker() -> AsyncIterator[BrokerRig]:
    clock = FakeClock()
    yield BrokerRig(MemoryBroker(clock=clock), advance=clock.advance)


@contextlib.asynccontextmanager
async def memory_presence_manager() -> AsyncIterator[PresenceRig]:
    yield PresenceRig(MemoryPresenceManager())


@contextlib.asynccontextmanager
async def nats_broker() -> AsyncIterator[BrokerRig]:
    with nats_server() as server:
        broker = NatsBroker(NatsOptions(url=server.url))
        yield BrokerRig(broker, advance=asyncio.sleep, settle=broker.flush)


@contextlib.asynccontextmanager
async def redis_broker(kind: str) -> AsyncIterator[BrokerRig]:
    """One shared deployment per kind; a fresh key prefix per test, and time moved by shortening TTLs."""
    setup = redis_servers.shared(kind)
    prefix = redis_servers.unique_prefix()
    broker = RedisBroker(RedisBrokerOptions(redis_servers.options_for(setup, prefix)))

    async def advance(seconds: float) -> None:
        await redis_servers.shift_ttls(setup.masters, prefix, seconds)

    yield BrokerRig(broker, advance=advance, settle=broker.sync)


@contextlib.asynccontextmanager
async def redis_presence_manager(kind: str) -> AsyncIterator[PresenceRig]:
    setup = redis_servers.shared(kind)
    options = RedisPresenceOptions(redis_servers.options_for(setup, redis_servers.unique_prefix()))
    yield PresenceRig(RedisPresenceManager(options))


REDIS_KINDS = ("standalone", "cluster", "sentinel", "sharded")

BROKERS: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[BrokerRig]]] = {
    "memory": memory_broker,
    "nats": nats_broker,
    **{f"redis-{kind}": functools.partial(redis_broker, kind) for kind in REDIS_KINDS},
}
PRESENCE_MANAGERS: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[PresenceRig]]] = {
    "memory": memory_presence_manager,
    **{f"redis-{kind}": functools.partial(redis_presence_manager, kind) for kind in REDIS_KINDS},
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "history: needs a broker that keeps history (supports_history)")


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture(params=sorted(BROKERS))
async def rig(request: pytest.FixtureRequest, handler: RecordingHandler) -> AsyncIterator[BrokerRig]:
    async with BROKERS[request.param]() as made:
        if request.node.get_closest_marker("history") and not made.broker.supports_history:
            pytest.skip(f"{request.param} keeps no history")
        await made.broker.start(handler)
        try:
            yield made
        finally:
            await made.broker.close()


@pytest.fixture
def broker(rig: BrokerRig) -> Broker:
    return rig.broker


@pytest.fixture(params=sorted(PRESENCE_MANAGERS))
async def presence_manager(request: pytest.FixtureRequest) -> AsyncIterator[PresenceManager]:
    async with PRESENCE_MANAGERS[request.param]() as made:
        try:
            yield made.presence_manager
        finally:
            await made.presence_manager.close()
