"""SIGHUP (systemd's ExecReload) leaves rotary serving: no exit, no disconnect, publications flow.

Centrifugo reloads part of its config on SIGHUP; rotary cannot yet, so it logs that the config is
unchanged and carries on. Without a handler SIGHUP would end the process without the 3001 goodbye.
"""

from __future__ import annotations

import os
import signal
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
    memory_config,
    print_logs,
    redis_config,
    subscribed,
)

from rotary.server.reload import NOT_SUPPORTED

pytestmark = pytest.mark.compat

CLIENTS = 6


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


async def sighup_survived(server: RotaryNode, sdk_clients: Any, *, expected_lines: int = 1) -> None:
    channel = "chat:" + uuid.uuid4().hex[:12]
    clients = []
    for index in range(CLIENTS):
        sdk = await connected(sdk_clients, server, f"user{index}")
        _, events = await subscribed(sdk, channel)
        clients.append((sdk, events))
    assert server.process is not None

    os.kill(server.process.pid, signal.SIGHUP)

    async def logged() -> bool:
        return server.log().count(NOT_SUPPORTED) >= expected_lines

    await eventually(logged, "rotary logs that it ignores SIGHUP")
    assert server.alive
    await server.api("publish", {"channel": channel, "data": {"after": "sighup"}})
    for sdk, events in clients:
        ctx = await events.next("on_publication")
        assert (ctx.pub.offset, ctx.pub.data) == (1, {"after": "sighup"})
        assert "on_disconnected" not in sdk.events.names()
        assert sdk.events.names().count("on_connecting") == 1  # the initial connect alone
    assert server.alive
    assert "Traceback" not in server.log()


async def test_sighup_is_logged_and_ignored(alone: RotaryNode, sdk_clients: Any) -> None:
    await sighup_survived(alone, sdk_clients)


async def test_sighup_to_the_supervisor_keeps_every_worker(workers: RotaryNode, sdk_clients: Any) -> None:
    async def two_workers() -> bool:
        return len(await cluster_nodes(workers)) == 2

    await eventually(two_workers, "info shows both workers")
    await sighup_survived(workers, sdk_clients)
    assert "exited with" not in workers.log()
    await eventually(two_workers, "info still shows both workers")
