"""SIGHUP (systemd's ExecReload) reloads the config as Centrifugo does, in a real server process.

Namespaces, channel options and token keys change for what comes next (new subscriptions, new
connections) while connected clients stay connected and keep their subscriptions. A config that fails
validation is refused with Centrifugo's log line and changes nothing. A ``--workers`` supervisor
passes SIGHUP to each worker.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from helpers import redis_servers
from helpers.cluster import (
    CHAT_NAMESPACE,
    RotaryNode,
    cluster_nodes,
    connected,
    eventually,
    memory_config,
    print_logs,
    redis_config,
    subscribed,
    token,
)

from rotary.server.reload import REFUSED, RELOADED

pytestmark = pytest.mark.compat

CLIENTS = 4
ERROR_UNKNOWN_CHANNEL = 102
ERROR_PERMISSION_DENIED = 103
DISCONNECT_INVALID_TOKEN = 3500
ROTATED_SECRET = "a-rotated-hmac-secret-key-of-32-bytes-or-more-too"


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


def rewrite_config(server: RotaryNode, config: dict[str, Any] | str) -> None:
    """Replaces the config file the process was started with (a dict as JSON, a str as is)."""
    text = config if isinstance(config, str) else json.dumps(config)
    (server.directory / "config.json").write_text(text)


async def sighup(server: RotaryNode, line: str, count: int = 1) -> None:
    """Sends SIGHUP and waits until ``line`` was logged ``count`` times in all."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGHUP)

    async def logged() -> bool:
        return server.log().count(line) >= count

    await eventually(logged, f"rotary logs {line!r} {count} time(s)")


async def subscribers(server: RotaryNode, sdk_clients: Any, channel: str) -> list[tuple[Any, Any]]:
    clients = []
    for index in range(CLIENTS):
        sdk = await connected(sdk_clients, server, f"user{index}")
        _, events = await subscribed(sdk, channel)
        clients.append((sdk, events))
    return clients


async def still_served(server: RotaryNode, clients: list[tuple[Any, Any]], channel: str, n: int) -> None:
    """Every client still holds its first connection and subscription and gets publication ``n``."""
    await server.api("publish", {"channel": channel, "data": {"n": n}})
    for sdk, events in clients:
        ctx = await events.next("on_publication")
        assert ctx.pub.data == {"n": n}
        assert "on_disconnected" not in sdk.events.names()
        assert sdk.events.names().count("on_connecting") == 1  # the initial connect alone
    assert server.alive
    assert "Traceback" not in server.log()


async def refused_subscription(sdk: Any, channel: str) -> int:
    sub, events = sdk.subscription(channel)
    await sub.subscribe()
    code: int = (await events.next("on_unsubscribed")).code
    return code


def unique(namespace: str) -> str:
    return f"{namespace}:{uuid.uuid4().hex[:12]}"


async def test_sighup_applies_namespace_changes_to_new_subscriptions(
    alone: RotaryNode, sdk_clients: Any
) -> None:
    channel = unique("chat")
    clients = await subscribers(alone, sdk_clients, channel)
    probe = clients[0][0]
    assert await refused_subscription(probe, unique("news")) == ERROR_UNKNOWN_CHANNEL
    before = await alone.call("publish", {"channel": unique("news"), "data": {}})
    assert before["error"]["code"] == ERROR_UNKNOWN_CHANNEL

    config = memory_config()
    chat = config["channel"]["namespaces"][0]
    chat["allow_subscribe_for_client"] = False
    config["channel"]["namespaces"].append({**copy.deepcopy(CHAT_NAMESPACE), "name": "news"})
    rewrite_config(alone, config)
    await sighup(alone, RELOADED)

    await subscribed(probe, unique("news"))
    await alone.api("publish", {"channel": unique("news"), "data": {}})  # the server API's rules too
    assert await refused_subscription(probe, unique("chat")) == ERROR_PERMISSION_DENIED
    await still_served(alone, clients, channel, 1)


async def test_sighup_refuses_a_broken_config_and_keeps_the_old_one(
    alone: RotaryNode, sdk_clients: Any
) -> None:
    channel = unique("chat")
    clients = await subscribers(alone, sdk_clients, channel)
    broken = memory_config()
    broken["channel"]["namespaces"][0]["name"] = "bad name!"
    broken["channel"]["namespaces"].append({"name": "news"})
    rewrite_config(alone, broken)
    await sighup(alone, REFUSED)
    assert "channel.namespaces[0].name" in alone.log()
    rewrite_config(alone, "{not json")
    await sighup(alone, REFUSED, count=2)
    assert RELOADED not in alone.log()

    probe = clients[0][0]
    assert await refused_subscription(probe, unique("news")) == ERROR_UNKNOWN_CHANNEL
    await subscribed(probe, unique("chat"))
    await still_served(alone, clients, channel, 1)


async def test_sighup_rotates_the_token_key(alone: RotaryNode, sdk_clients: Any) -> None:
    channel = unique("chat")
    clients = await subscribers(alone, sdk_clients, channel)
    config = memory_config()
    config["client"]["token"]["hmac_secret_key"] = ROTATED_SECRET
    rewrite_config(alone, config)
    await sighup(alone, RELOADED)

    rotated = jwt.encode({"sub": "rotated"}, ROTATED_SECRET, algorithm="HS256")
    fresh = sdk_clients(alone, token=rotated)
    await fresh.client.connect()
    await fresh.client.ready(timeout=5)
    await subscribed(fresh, channel)

    old = sdk_clients(alone, token=token("late"), min_reconnect_delay=0.05)
    await old.client.connect()
    assert (await old.events.next("on_disconnected")).code == DISCONNECT_INVALID_TOKEN
    await still_served(alone, clients, channel, 1)


async def test_sighup_to_the_supervisor_reloads_every_worker(workers: RotaryNode, sdk_clients: Any) -> None:
    async def two_workers() -> bool:
        return len(await cluster_nodes(workers)) == 2

    await eventually(two_workers, "info shows both workers")
    channel = unique("chat")
    clients = await subscribers(workers, sdk_clients, channel)
    config = json.loads((workers.directory / "config.json").read_text())
    config["channel"]["namespaces"].append({**copy.deepcopy(CHAT_NAMESPACE), "name": "news"})
    rewrite_config(workers, config)
    await sighup(workers, RELOADED, count=2)

    for sdk, _ in clients:  # whichever worker holds each connection
        await subscribed(sdk, unique("news"))
    await still_served(workers, clients, channel, 1)
    assert "exited with" not in workers.log()
    await eventually(two_workers, "info still shows both workers")
