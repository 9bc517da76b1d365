"""Graceful shutdown: SIGTERM closes every connection with 3001 "shutdown" and rotary exits 0.

3001 tells the SDKs to reconnect (https://centrifugal.dev/docs/transports/client_protocol, codes
3000-3499). With the Redis engine nothing is lost across a restart: the SDKs reconnect to the
restarted node and recover what was published while it was down, through another node or right after
the restart, once and in order (https://centrifugal.dev/docs/server/history_and_recovery).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from helpers import redis_servers
from helpers.cluster import (
    RotaryNode,
    connected,
    memory_config,
    print_logs,
    redis_config,
    rotary_nodes,
    subscribed,
)

pytestmark = pytest.mark.compat

SHUTDOWN = (3001, "shutdown")
CONNECT_CALLED = 0
"""The code of the SDK's own first `connecting` event."""
EXIT_WITHIN = 5.0
"""Seconds from SIGTERM to the process exit, with every client already closed."""


@pytest.fixture
def alone(tmp_path: Path) -> Iterator[RotaryNode]:
    server = RotaryNode(tmp_path / "alone", memory_config())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        print_logs([server])


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[list[RotaryNode]]:
    redis = redis_servers.start_standalone()
    try:
        config = redis_config(redis.addresses[0], redis_servers.unique_prefix())
        with rotary_nodes(tmp_path, config, 2) as nodes:
            yield nodes
    finally:
        redis.stop()


def unpayload(data: Any) -> Any:
    """Publication data back to a JSON value (Protobuf connections hand over bytes)."""
    return orjson.loads(data) if isinstance(data, bytes) else data


def channel_name() -> str:
    return "chat:" + uuid.uuid4().hex[:12]


async def sigterm(node: RotaryNode) -> tuple[int, float]:
    """SIGTERM; the exit code and the seconds it took."""
    began = time.monotonic()
    code = await asyncio.to_thread(node.terminate, EXIT_WITHIN)
    return code, time.monotonic() - began


async def assert_told_to_reconnect(sdk: Any) -> None:
    assert (await sdk.events.next("on_connecting")).code == CONNECT_CALLED
    ctx = await sdk.events.next("on_connecting")
    assert (ctx.code, ctx.reason) == SHUTDOWN


async def test_sigterm_closes_every_client_with_shutdown_and_exits_zero(
    alone: RotaryNode, sdk_clients: Any
) -> None:
    channel = channel_name()
    clients = []
    for index in range(6):
        sdk = await connected(sdk_clients, alone, f"user{index}", use_protobuf=index % 2 == 1)
        await subscribed(sdk, channel)
        clients.append(sdk)

    code, elapsed = await sigterm(alone)

    assert code == 0 and elapsed < EXIT_WITHIN
    for sdk in clients:
        await assert_told_to_reconnect(sdk)
    assert "Traceback" not in alone.log()


async def test_a_connection_that_never_sent_connect_does_not_hold_up_the_exit(alone: RotaryNode) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(alone.ws_url, protocols=("centrifuge-json",)) as silent:
            code, elapsed = await sigterm(alone)
            message = await silent.receive(timeout=1)

    assert code == 0 and elapsed < EXIT_WITHIN
    assert message.type is aiohttp.WSMsgType.CLOSE and message.data == SHUTDOWN[0]


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
async def test_clients_recover_across_a_restart_on_the_redis_engine(
    two_nodes: list[RotaryNode], sdk_clients: Any, use_protobuf: bool
) -> None:
    restarted, other = two_nodes
    channel = channel_name()
    subscriptions = []
    for index in range(3):
        sdk = await connected(sdk_clients, restarted, f"user{index}", use_protobuf=use_protobuf)
        _, events = await subscribed(sdk, channel)
        assert not (await events.next("on_subscribed")).was_recovering
        subscriptions.append((sdk, events))
    await restarted.api("publish", {"channel": channel, "data": {"n": 1}})
    for _, events in subscriptions:
        assert (await events.next("on_publication")).pub.offset == 1

    code, _ = await sigterm(restarted)
    assert code == 0
    for sdk, _ in subscriptions:
        await assert_told_to_reconnect(sdk)
    for number in (2, 3, 4):
        await other.api("publish", {"channel": channel, "data": {"n": number}})
    await asyncio.to_thread(restarted.start)
    for number in (5, 6):
        await restarted.api("publish", {"channel": channel, "data": {"n": number}})

    for _, events in subscriptions:
        resubscribed = await events.next("on_subscribed")
        assert (resubscribed.was_recovering, resubscribed.recovered) == (True, True)
    await other.api("publish", {"channel": channel, "data": {"n": 7}})
    for _, events in subscriptions:
        received = [(await events.next("on_publication")).pub for _ in range(6)]
        assert [(pub.offset, unpayload(pub.data)) for pub in received] == [(n, {"n": n}) for n in range(2, 8)]
    # Publications of a channel arrive in order: a duplicate would come before this last one.
    await other.api("publish", {"channel": channel, "data": {"n": 8}})
    for _, events in subscriptions:
        last = (await events.next("on_publication")).pub
        assert (last.offset, unpayload(last.data)) == (8, {"n": 8}), "a duplicate arrived"
        assert len([name for name, _ in events.seen if name == "on_publication"]) == 8
