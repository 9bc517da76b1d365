"""`rotary --workers 2`: two worker processes share one port and act as one server.

The kernel spreads connections over the workers (SO_REUSEPORT); the Redis engine joins them, so a
publication made through whichever worker answers the API reaches every client, and `info` shows
both workers as nodes. SIGTERM to the supervisor stops both gracefully. A worker that cannot start
ends the server with its error, as Centrifugo (one process) exits when it cannot listen; a worker
killed after it served is started again.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import redis_servers
from helpers.cluster import (
    START_TIMEOUT,
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
def redis_address() -> Iterator[str]:
    redis = redis_servers.start_standalone()
    try:
        yield redis.addresses[0]
    finally:
        redis.stop()


@pytest.fixture
def workers(tmp_path: Path, redis_address: str) -> Iterator[RotaryNode]:
    config = redis_config(redis_address, redis_servers.unique_prefix())
    server = RotaryNode(tmp_path / "workers", config, args=("--workers", "2"))
    try:
        server.start(ready_lines=2)
        yield server
    finally:
        server.stop()
        print_logs([server])


def wait_for_log(server: RotaryNode, pattern: str, count: int) -> list[str]:
    """The matches of ``pattern`` in the server's log once there are ``count`` of them."""
    deadline = time.monotonic() + START_TIMEOUT
    while len(found := re.findall(pattern, server.log())) < count:
        assert server.alive, f"rotary exited with {server.returncode}:\n{server.log()}"
        assert time.monotonic() < deadline, f"no {count} lines {pattern!r} in:\n{server.log()}"
        time.sleep(0.05)
    return found


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


def test_a_worker_that_cannot_listen_ends_the_server_with_its_error(
    tmp_path: Path, redis_address: str
) -> None:
    """Centrifugo exits non-zero when its port is taken; restarting workers forever would hide it."""
    config = redis_config(redis_address, redis_servers.unique_prefix())
    server = RotaryNode(tmp_path / "workers", config, args=("--workers", "2"))
    with socket.socket() as taken:  # listening without SO_REUSEPORT: no worker can share the port
        taken.bind(("0.0.0.0", server.port))
        taken.listen()
        try:
            with pytest.raises(RuntimeError, match="rotary exited with 1"):
                server.start(ready_lines=2)
        finally:
            server.stop()
            print_logs([server])
    assert f"http_server.port: cannot listen on 0.0.0.0:{server.port}" in server.log()
    assert "could not start (exit code 1); stopping the server" in server.log()
    assert "starting it again" not in server.log()
    assert "Traceback" not in server.log()


def test_a_worker_killed_after_it_served_is_started_again(workers: RotaryNode) -> None:
    pids = [int(pid) for pid in wait_for_log(workers, r"worker \d started \(pid (\d+)\)", 2)]
    os.kill(pids[0], signal.SIGKILL)

    wait_for_log(workers, f"worker 0 exited with {-signal.SIGKILL}; starting it again", 1)
    wait_for_log(workers, "serving on", 3)
    restarted = wait_for_log(workers, r"worker 0 started \(pid (\d+)\)", 2)[1]
    assert int(restarted) not in pids
    assert workers.terminate() == 0
