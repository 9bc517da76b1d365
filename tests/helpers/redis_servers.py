"""Real redis-server processes on free ports: standalone, a 3-master Cluster, Sentinel with one master.

Each server runs in its own temporary directory with persistence off, and is ready when it answers
PING. The contract suites share one server of each kind for the whole session (``shared``) and stop
them at interpreter exit; a test that breaks a server on purpose starts its own.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.env import START_LIMIT, free_port, require_binary
from helpers.netns import NetworkLink
from rotary.engines.redis import RedisOptions

HOST = "127.0.0.1"
START_TIMEOUT = START_LIMIT
SENTINEL_MASTER_NAME = "rotary-master"


def _resp_command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def ask(port: int, *command: str, timeout: float = 1.0, host: str = HOST) -> bytes:
    """Sends one command and returns the raw reply (enough to check readiness and cluster state)."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(_resp_command(*command))
        time.sleep(0.01)
        return conn.recv(65536)


def _wait_until(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout}s")


@dataclass
class RedisProcess:
    """One redis-server (or sentinel) process; it can be killed and started again on the same port."""

    args: list[str]
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    host: str = HOST

    @classmethod
    def create(cls, *extra: str, sentinel_config: str = "") -> RedisProcess:
        workdir = Path(tempfile.mkdtemp(prefix="rotary-redis-"))
        port = free_port()
        args = [require_binary("redis-server")]
        if sentinel_config:
            conf = workdir / "sentinel.conf"
            conf.write_text(f"port {port}\nbind {HOST}\n{sentinel_config}")
            args += [str(conf), "--sentinel"]
        args += [
            "--port",
            str(port),
            "--bind",
            HOST,
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        return cls(args + list(extra), port, workdir)

    @classmethod
    def behind(cls, link: NetworkLink) -> RedisProcess:
        """A redis-server inside ``link``'s namespace, reached at its inner address only."""
        server = cls.create("--protected-mode", "no")
        args = [link.inner_address if arg == HOST else arg for arg in server.args]
        return cls(link.command(*args), server.port, server.workdir, host=link.inner_address)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        with (self.workdir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)

        def ready() -> bool:
            return ask(self.port, "PING", host=self.host).startswith(b"+PONG")

        _wait_until(ready, f"redis on {self.address}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class RedisSetup:
    """A running Redis deployment of one kind and the addresses a client needs to reach it."""

    kind: str
    processes: list[RedisProcess] = field(default_factory=list)
    addresses: tuple[str, ...] = ()
    masters: tuple[str, ...] = ()
    """Every address that holds keys (the ones a test flushes and inspects)."""

    def stop(self) -> None:
        for process in self.processes:
            process.remove()


def start_standalone() -> RedisSetup:
    server = RedisProcess.create()
    server.start()
    return RedisSetup("standalone", [server], (server.address,), (server.address,))


def start_sharded(count: int = 2) -> RedisSetup:
    setups = [start_standalone() for _ in range(count)]
    processes = [p for setup in setups for p in setup.processes]
    addresses = tuple(p.address for p in processes)
    return RedisSetup("sharded", processes, addresses, addresses)


def start_cluster(masters: int = 3) -> RedisSetup:
    nodes = [
        RedisProcess.create(
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(free_port()),
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        )
        for _ in range(masters)
    ]
    setup = RedisSetup("cluster", nodes, tuple(n.address for n in nodes), tuple(n.address for n in nodes))
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                require_binary("redis-cli"),
                "--cluster",
                "create",
                *setup.addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        for node in nodes:
            _wait_until(functools.partial(_cluster_ok, node.port), "cluster state")
    except BaseException:
        setup.stop()
        raise
    return setup


def _cluster_ok(port: int) -> bool:
    return b"cluster_state:ok" in ask(port, "CLUSTER", "INFO")


def start_sentinel() -> RedisSetup:
    master = RedisProcess.create()
    master.start()
    sentinel = RedisProcess.create(
        sentinel_config=(
            f"sentinel monitor {SENTINEL_MASTER_NAME} {HOST} {master.port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_MASTER_NAME} 5000\n"
        )
    )
    setup = RedisSetup("sentinel", [master, sentinel], (sentinel.address,), (master.address,))
    try:
        sentinel.start()
        _wait_until(
            lambda: (
                str(master.port).encode()
                in ask(sentinel.port, "SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER_NAME)
            ),
            "sentinel",
        )
    except BaseException:
        setup.stop()
        raise
    return setup


STARTERS: dict[str, Callable[[], RedisSetup]] = {
    "standalone": start_standalone,
    "sharded": start_sharded,
    "cluster": start_cluster,
    "sentinel": start_sentinel,
}

_shared: dict[str, RedisSetup] = {}


def shared(kind: str) -> RedisSetup:
    """The session's one deployment of this kind, started on first use and stopped at exit."""
    if kind not in _shared:
        require_binary("redis-server")
        _shared[kind] = STARTERS[kind]()
    return _shared[kind]


@atexit.register
def _stop_shared() -> None:
    for setup in _shared.values():
        setup.stop()
    _shared.clear()


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def flush(addresses: Sequence[str]) -> None:
    for address in addresses:
        ask(split_address(address)[1], "FLUSHALL")


async def shift_ttls(masters: Sequence[str], prefix: str, seconds: float) -> None:
    """Moves Redis time forward for the keys under ``prefix``: every TTL shrinks by ``seconds``.

    Redis has no clock a test can set; shortening the TTLs is what time passing does to them.
    """
    from redis.asyncio import Redis

    shift = int(seconds * 1000)
    for address in masters:
        host, port = split_address(address)
        async with Redis(host=host, port=port) as client:
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                ttl = await client.pttl(key)
                if ttl < 0:
                    continue
                if ttl <= shift:
                    await client.delete(key)
                else:
                    await client.pexpire(key, ttl - shift)


async def shift_presence_lapse_times(masters: Sequence[str], prefix: str, seconds: float) -> None:
    """Moves Redis time forward for the presence entries under ``prefix``: every lapse time (a
    sorted-set score the presence scripts compare with the server's TIME) comes ``seconds`` closer,
    and so do the keys' TTLs. A test makes time pass without waiting for it."""
    from redis.asyncio import Redis

    await shift_ttls(masters, prefix, seconds)
    shift = int(seconds * 1000)
    for address in masters:
        host, port = split_address(address)
        async with Redis(host=host, port=port) as client:
            async for key in client.scan_iter(match=f"{prefix}.presence.expiry.*", count=1000):
                for member, score in await client.zrange(key, 0, -1, withscores=True):
                    await client.zadd(key, {member: score - shift})


_prefixes = itertools.count()


def unique_prefix() -> str:
    """A key prefix no other test used, so tests never see each other's keys or messages."""
    return f"t{os.getpid()}n{next(_prefixes)}"


def options_for(setup: RedisSetup, prefix: str, **overrides: Any) -> RedisOptions:
    """Client options reaching a deployment the way a user would configure it."""
    by_kind: dict[str, dict[str, Any]] = {
        "standalone": {"addresses": setup.addresses},
        "sharded": {"addresses": setup.addresses},
        "cluster": {"addresses": (), "cluster_addresses": (",".join(setup.addresses),)},  # one shard
        "sentinel": {
            "addresses": (),
            "sentinel_addresses": (",".join(setup.addresses),),
            "sentinel_master_name": SENTINEL_MASTER_NAME,
        },
    }
    # An upper bound a loaded machine cannot break (a 2 s one expired while other work kept both cores
    # busy); the tests of the timeout itself pass their own.
    settings: dict[str, Any] = {"prefix": prefix, "io_timeout": 30.0} | by_kind[setup.kind] | overrides
    return RedisOptions(**settings)
