"""Rotary processes sharing one Redis, started, signalled, killed and restarted by tests.

A :class:`RotaryNode` is one ``rotary -c <config> --http_server.port <port>`` process (or a
``--workers N`` supervisor with its workers) in its own process group, so a failing test can kill
everything it started. It keeps its port across restarts, which is what SDK clients reconnecting to
the same URL need. The configuration is the one Centrifugo's SDK docs use (HMAC tokens, an API key,
a ``chat`` namespace with presence, join/leave and recovery) on the Redis engine
(https://centrifugal.dev/docs/server/engines#redis-engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from helpers.env import START_LIMIT, free_port

ROTARY = Path(sys.executable).with_name("rotary")
SECRET = "multinode-tests-hmac-secret-key-of-32-bytes-or-more"
API_KEY = "multinode-tests-api-key"
READY_LINE = "serving on"
START_TIMEOUT = START_LIMIT
"""An upper bound, not a margin: a start returns as soon as the server serves; on a loaded
2-core machine several workers importing everything have taken more than 15 s."""
STOP_TIMEOUT = 10.0
API_TIMEOUT = 5.0

CHAT_NAMESPACE: dict[str, Any] = {
    "name": "chat",
    "presence": True,
    "join_leave": True,
    "force_push_join_leave": True,
    "history_size": 100,
    "history_ttl": "300s",
    "force_recovery": True,
    "allow_subscribe_for_client": True,
    "allow_publish_for_subscriber": True,
    "allow_presence_for_subscriber": True,
    "allow_history_for_subscriber": True,
}


def memory_config() -> dict[str, Any]:
    """A server config on the memory engine (one node alone)."""
    return {
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"]},
        "http_api": {"key": API_KEY},
        "channel": {"namespaces": [copy.deepcopy(CHAT_NAMESPACE)]},
    }


def redis_config(address: str, prefix: str) -> dict[str, Any]:
    """A server config on the Redis engine at ``address``, its keys under ``prefix``."""
    return {
        **memory_config(),
        "engine": {
            "type": "redis",
            "redis": {"address": [address], "prefix": prefix, "io_timeout": "1s", "connect_timeout": "500ms"},
        },
    }


def nats_config(url: str) -> dict[str, Any]:
    """A server config on the NATS broker at ``url`` (presence in each node's memory). NATS keeps
    no history, so the ``chat`` namespace has no history or recovery on it
    (https://centrifugal.dev/docs/server/engines#nats-broker)."""
    config = memory_config()
    without_history = ("history_size", "history_ttl", "force_recovery")
    config["channel"]["namespaces"] = [{k: v for k, v in CHAT_NAMESPACE.items() if k not in without_history}]
    return {**config, "broker": {"enabled": True, "type": "nats", "nats": {"url": url}}}


def token(user: str, **claims: Any) -> str:
    """A connection JWT for ``user``, signed like an application backend signs it."""
    return jwt.encode({"sub": user, **claims}, SECRET, algorithm="HS256")


class ApiError(AssertionError):
    """The server API answered with an error where the test expected a result."""


@dataclass
class RotaryNode:
    """One rotary server process; it can be stopped and started again on the same port."""

    directory: Path
    config: dict[str, Any]
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log_start: int = 0

    @property
    def log_path(self) -> Path:
        return self.directory / "rotary.log"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, ready_lines: int = 1) -> None:
        """Starts the process and returns once ``ready_lines`` listeners (one per worker) serve."""
        self.directory.mkdir(parents=True, exist_ok=True)
        config_path = self.directory / "config.json"
        config_path.write_text(json.dumps(self.config))
        self._log_start = len(self.log().encode())
        command = [str(ROTARY), "-c", str(config_path), "--http_server.port", str(self.port), *self.args]
        self._spawn(command, {**os.environ, "PYTHONUNBUFFERED": "1"})
        self._wait_ready(ready_lines)

    def _spawn(self, command: list[str], env: dict[str, str]) -> None:
        """Runs ``command`` in its own session (killed with its children), its output in the log."""
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
                env=env,
            )

    def _wait_ready(self, lines: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while self.log().encode()[self._log_start :].count(READY_LINE.encode()) < lines:
            if not self.alive:
                raise RuntimeError(f"rotary exited with {self.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"rotary did not start within {START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """Sends SIGTERM and waits for the exit code; raises TimeoutExpired if it does not exit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Kills the whole process group (a supervisor's workers too) without a goodbye."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Ends the process however it can: politely first, then by force."""
        if self.alive:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    async def call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/<method>``: the whole JSON body, error or result."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT)) as session:
            async with session.post(
                f"{self.http_url}/api/{method}", json=payload, headers={"X-API-Key": API_KEY}
            ) as response:
                assert response.status == 200, await response.text()
                body: dict[str, Any] = await response.json()
        return body

    async def api(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The result of a server API call that must succeed."""
        body = await self.call(method, payload)
        if "error" in body:
            raise ApiError(f"{method} on :{self.port} failed: {body['error']}")
        result: dict[str, Any] = body.get("result", {})
        return result


@contextlib.contextmanager
def rotary_nodes(
    directory: Path, config: dict[str, Any], count: int, kind: type[RotaryNode] = RotaryNode
) -> Iterator[list[RotaryNode]]:
    """``count`` running nodes with one config; every process is gone on exit, their logs printed.
    ``kind`` may be helpers.centrifugo.CentrifugoNode, to run Centrifugo through the same test."""
    nodes = [kind(directory / f"node{index}", config) for index in range(count)]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        print_logs(nodes)


def print_logs(nodes: list[RotaryNode]) -> None:
    """What the nodes logged; pytest shows it for failed tests only."""
    for node in nodes:
        print(f"--- rotary log ({node.directory.name}, port {node.port}) ---\n{node.log()}")


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 8.0) -> None:
    """Polls ``check`` until it holds; node discovery and PUB/SUB resubscription take seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.1)


async def cluster_nodes(node: RotaryNode) -> list[dict[str, Any]]:
    """The nodes that ``info`` on ``node`` reports."""
    nodes: list[dict[str, Any]] = (await node.api("info", {}))["nodes"]
    return nodes


# -- SDK clients (made by the compat suite's ``sdk_clients`` fixture) ---------------------------------


async def connected(make: Callable[..., Any], node: RotaryNode, user: str, **options: Any) -> Any:
    """A centrifuge-python client of ``node``, connected as ``user``."""
    sdk = make(node, token=token(user), **options)
    await sdk.client.connect()
    await sdk.client.ready(timeout=5)
    return sdk


async def subscribed(sdk: Any, channel: str, **options: Any) -> tuple[Any, Any]:
    """A subscription of ``sdk`` to ``channel`` once the server confirmed it, and its event log."""
    sub, events = sdk.subscription(channel, **options)
    await sub.subscribe()
    await sub.ready(timeout=5)
    return sub, events


async def next_where(events: Any, name: str, check: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    """The oldest ``name`` event whose context passes ``check`` (others of that name are dropped)."""
    async with asyncio.timeout(timeout):
        while True:
            ctx = await events.next(name, timeout=timeout)
            if check(ctx):
                return ctx
