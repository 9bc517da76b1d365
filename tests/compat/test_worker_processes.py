"""`rotary --workers 2`: two worker processes share one port and act as one server.

The kernel spreads connections over the workers (SO_REUSEPORT); the Redis engine joins them, so a
publication made through whichever worker answers the API reaches every client, and `info` shows
both workers as nodes. SIGTERM to the supervisor stops both gracefully.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import redis_servers
from helpers.cluster import (
    RotaryNode,
    cluster_nodes,
    connected,
    eventually,
    print_logs,
    redis_config,
    subscribed,
)

pytestmark = pytest.mark.compat

EXIT_WITHIN = 5.0
"""Seconds from SIGTERM to the exit of the supervisor and both workers."""
CLIENTS = 40
"""Enough connections that all landing on one worker would be a 1 in 2**39 chance."""
SHUTDOWN_CODE = 3001
CONNECT_CALLED = 0
"""The code of the SDK's own first `connecting` event."""


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[RotaryNode]:
    redis = redis_servers.start_standalone()
    config = redis_config(redis.addresses[0], redis_servers.unique_prefix())
    server = RotaryNode(tmp_path / "workers", config, args=("--workers", "2"))
    try:
        server.start(ready_lines=2)
        yield server
    finally:
        server.stop()
        redis.stop()
        print_logs([server])


async def connect_many(sdk_clients: Any, server: RotaryNode, channel: str) -> list[tuple[Any, Any]]:
    async def one(index: int) -> tuple[Any, Any]:
        sdk = await connected(sdk_clients, server, f"user{index}")
        _, events = await subscribed(sdk, channel)
        return sdk, events

    return list(await asyncio.gather(*(one(index) for index in range(CLIENTS))))


async def test_connections_land_on_both_workers_and_a_publication_reaches_all(
    workers: RotaryNode, sdk_clients: Any
) -> None:
    channel = "chat:" + uuid.uuid4().hex[:12]
    clients = await connect_many(sdk_clients, workers, channel)

    async def both_workers_serve() -> bool:
        counts = [node["num_clients"] for node in await cluster_nodes(workers)]
        return len(counts) == 2 and min(counts) > 0 and sum(counts) == CLIENTS

    await eventually(both_workers_serve, "info shows two workers sharing the clients")
    await workers.api("publish", {"channel": channel, "data": {"to": "everyone"}})
    for _, events in clients:
        ctx = await events.next("on_publication")
        assert (ctx.pub.offset, ctx.pub.data) == (1, {"to": "everyone"})


async def test_sigterm_disconnects_every_client_with_shutdown_and_exits_zero(
    workers: RotaryNode, sdk_clients: Any
) -> None:
    channel = "chat:" + uuid.uuid4().hex[:12]
    clients = await connect_many(sdk_clients, workers, channel)

    code = await asyncio.to_thread(workers.terminate, EXIT_WITHIN)

    assert code == 0
    for sdk, _ in clients:
        initial = await sdk.events.next("on_connecting")
        assert initial.code == CONNECT_CALLED
        ctx = await sdk.events.next("on_connecting")
        assert (ctx.code, ctx.reason) == (SHUTDOWN_CODE, "shutdown")
