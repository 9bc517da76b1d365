"""The Controller contract: opaque messages between nodes, to all of them or to one by id.

Every test runs once per implementation in ``CONTROLLERS``. Each rig makes controllers for the
node ids it is asked for, all sharing one backend; a single-node controller (memory) reaches only
itself, so tests that need a second node skip it.
See https://centrifugal.dev/docs/server/engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from helpers import redis_servers
from helpers.nats_server import nats_server

from rotary.engines.base import Controller
from rotary.engines.memory_controller import MemoryController
from rotary.engines.nats import NatsController, NatsOptions
from rotary.engines.redis import RedisController

from .conftest import REDIS_KINDS


@dataclass(slots=True)
class Inbox:
    """A control handler that keeps what arrived and lets a test await it."""

    messages: list[bytes] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, data: bytes) -> None:
        self.messages.append(data)
        self._arrived.set()

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[bytes]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.messages


async def _let_stray_messages_arrive() -> None:
    """A message that should not arrive has no event to await; give it time to show up if wrong."""
    await asyncio.sleep(0.2)


async def _nothing_in_flight() -> None:
    """The memory controller delivers inside publish_control."""


@dataclass(frozen=True, slots=True)
class ControllerRig:
    make: Callable[[str], Controller]
    multi_node: bool
    settle: Callable[[], Awaitable[None]] = _let_stray_messages_arrive


@contextlib.asynccontextmanager
async def memory_controllers() -> AsyncIterator[ControllerRig]:
    yield ControllerRig(MemoryController, multi_node=False, settle=_nothing_in_flight)


@contextlib.asynccontextmanager
async def redis_controllers(kind: str) -> AsyncIterator[ControllerRig]:
    options = redis_servers.options_for(redis_servers.shared(kind), redis_servers.unique_prefix())
    yield ControllerRig(lambda node_id: RedisController(node_id, options), multi_node=True)


@contextlib.asynccontextmanager
async def nats_controllers() -> AsyncIterator[ControllerRig]:
    with nats_server() as server:
        options = NatsOptions(url=server.url)
        yield ControllerRig(lambda node_id: NatsController(node_id, options), multi_node=True)


CONTROLLERS: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[ControllerRig]]] = {
    "memory": memory_controllers,
    "nats": nats_controllers,
    **{f"redis-{kind}": functools.partial(redis_controllers, kind) for kind in REDIS_KINDS},
}


@pytest.fixture(params=sorted(CONTROLLERS))
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[ControllerRig]:
    async with CONTROLLERS[request.param]() as made:
        yield made


@dataclass(frozen=True, slots=True)
class Node:
    controller: Controller
    inbox: Inbox


StartNodes = Callable[[Sequence[str]], Awaitable[list[Node]]]


@pytest.fixture
async def nodes(rig: ControllerRig) -> AsyncIterator[StartNodes]:
    """Starts one controller per node id, each with its own inbox; closes them afterwards."""
    started: list[Node] = []

    async def start(node_ids: Sequence[str]) -> list[Node]:
        for node_id in node_ids:
            node = Node(rig.make(node_id), Inbox())
            await node.controller.start(node.inbox)
            started.append(node)
        return started[-len(node_ids) :]

    yield start
    for node in started:
        await node.controller.close()


async def test_a_message_for_all_nodes_reaches_the_sender(rig: ControllerRig, nodes: StartNodes) -> None:
    [a] = await nodes(["a"])

    await a.controller.publish_control(b"survey")
    await a.inbox.wait_for(1)

    assert a.inbox.messages == [b"survey"]


async def test_a_message_for_this_node_by_id_arrives(rig: ControllerRig, nodes: StartNodes) -> None:
    [a] = await nodes(["a"])

    await a.controller.publish_control(b"\x00binary\xff", to_node="a")
    await a.inbox.wait_for(1)

    assert a.inbox.messages == [b"\x00binary\xff"]


async def test_a_message_for_another_node_does_not_arrive_here(rig: ControllerRig, nodes: StartNodes) -> None:
    [a] = await nodes(["a"])

    await a.controller.publish_control(b"for b", to_node="b")
    await a.controller.publish_control(b"for all")
    await a.inbox.wait_for(1)
    await rig.settle()

    assert a.inbox.messages == [b"for all"]


async def test_messages_arrive_in_order(rig: ControllerRig, nodes: StartNodes) -> None:
    [a] = await nodes(["a"])

    for n in range(20):
        await a.controller.publish_control(b"%d" % n)
    await a.inbox.wait_for(20)

    assert a.inbox.messages == [b"%d" % n for n in range(20)]


async def test_every_node_gets_broadcasts_and_only_the_named_node_its_own(
    rig: ControllerRig, nodes: StartNodes
) -> None:
    if not rig.multi_node:
        pytest.skip("a single-node controller has no other nodes")
    a, b, c = await nodes(["a", "b", "c"])

    await c.controller.publish_control(b"everyone")
    await c.controller.publish_control(b"only b", to_node="b")
    await b.inbox.wait_for(2)
    await rig.settle()

    assert [node.inbox.messages for node in (a, b, c)] == [
        [b"everyone"],
        [b"everyone", b"only b"],
        [b"everyone"],
    ]


async def test_start_and_close_are_idempotent(rig: ControllerRig) -> None:
    controller, inbox = rig.make("a"), Inbox()
    await controller.close()
    await controller.start(inbox)
    await controller.start(inbox)
    await controller.close()
    await controller.close()
