"""Soak: connections churn while publications flow; nothing the server holds grows with time.

An in-process server and SOAK_CONNECTIONS WebSocket clients (in a process of their own,
tests/helpers/crowd.py) subscribed to one channel. Every tick CHURN clients leave and as many new
ones connect and subscribe, all at once, and one publication goes out through the HTTP API. The
resources are counted, not guessed: asyncio tasks, open file descriptors, scheduled timer handles
(on the standard asyncio loop, whose schedule is visible), the hub's clients and channel
subscribers, and RSS, after a warm-up and again at the end, with the same number of connections
open. Then every client leaves and the counts fall back to where they were before the first
connection.

The suite's run is short; the reliability kit runs it long (``RELIABILITY_SOAK_CONNECTIONS``,
``RELIABILITY_SOAK_TICKS``). With ``RELIABILITY_RESULTS=<file>`` the figures go there as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from helpers.env import raise_open_files
from helpers.server import InProcessServer, start_in_process

from reliability.fuzz.harness import config_from

SOAK_CONNECTIONS = int(os.environ.get("RELIABILITY_SOAK_CONNECTIONS", "100"))
SOAK_TICKS = int(os.environ.get("RELIABILITY_SOAK_TICKS", "60"))
CHURN = max(1, SOAK_CONNECTIONS // 40)
"""Clients replaced per tick, all at once."""
RSS_GROWTH = 1.2
RSS_SLACK = 8 << 20


@dataclass
class Counts:
    tasks: int
    fds: int
    timers: int | None
    """Loop timers other than the node's deadline groups. Those are one timer per 0.1 s tick that
    holds a deadline, so their number follows when connections arrived, not what leaked; what they
    hold is ``deadlines``."""
    deadlines: int
    """Connections waiting on a deadline (ping, pong, expiry) in the node's shared ticks."""
    clients: int
    subscribers: int
    rss_mib: float


def counts(server: InProcessServer) -> Counts:
    loop = asyncio.get_running_loop()
    scheduled = getattr(loop, "_scheduled", None)
    deadlines = server.node.deadlines
    timers = (
        None
        if scheduled is None
        else sum(1 for handle in scheduled if not handle.cancelled()) - deadlines.timers
    )
    rss = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return Counts(
        tasks=len(asyncio.all_tasks()),
        fds=len(os.listdir("/proc/self/fd")),
        timers=timers,
        deadlines=deadlines.pending,
        clients=len(server.node.hub.clients),
        subscribers=server.node.hub.channels().get("soak", 0),
        rss_mib=round(rss / 2**20, 1),
    )


async def publish(api: aiohttp.ClientSession, server: InProcessServer, tick: int) -> tuple[int, Any]:
    url = server.http.make_url("/api/publish")
    payload = orjson.dumps({"channel": "soak", "data": {"tick": tick}})
    async with api.post(url, data=payload, headers={"X-API-Key": SETTINGS["http_api"]["key"]}) as response:
        return response.status, await response.json()


async def settled(server: InProcessServer, live: int) -> Counts:
    """The counts once the server has caught up with the clients (every leave processed); an
    upper bound of a minute, for a loaded machine."""
    for _ in range(6000):
        now = counts(server)
        if now.clients == live and now.subscribers == live:
            return now
        await asyncio.sleep(0.01)
    raise AssertionError(f"the hub still holds {now.clients} clients, {live} are connected")


async def back_to(server: InProcessServer, baseline: Counts) -> Counts:
    """The counts once the last connections' handlers have finished (their closing handshakes run
    after the hub let go of them), or after 20 s, for the caller to compare."""
    now = await settled(server, 0)
    for _ in range(2000):
        if now.tasks <= baseline.tasks and now.fds <= baseline.fds:
            break
        await asyncio.sleep(0.01)
        now = counts(server)
    return now


class CrowdProcess:
    """The clients, in a process of their own (tests/helpers/crowd.py): both ends of 10,000
    connections would not fit in one process's 20,000 descriptors."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, server: InProcessServer) -> CrowdProcess:
        url = str(server.http.make_url(server.config.websocket.handler_prefix))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "helpers.crowd",
            url,
            SECRET,
            "soak",
            cwd=Path(__file__).resolve().parents[1],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def ask(self, command: str) -> str:
        """Sends one command; its answer once the crowd has done it."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(f"{command}\n".encode())
        await self._process.stdin.drain()
        answer = (await self._process.stdout.readline()).decode().strip()
        assert answer.startswith("ok"), f"the crowd failed at {command!r} (its traceback is above)"
        return answer[2:].strip()

    async def stop(self) -> None:
        if self._process.returncode is None:
            self._process.kill()
        await self._process.wait()


async def test_churn_and_publications_leak_nothing() -> None:
    raise_open_files(SOAK_CONNECTIONS + 2 * CHURN + 256)  # the server's end of each, and the closing ones
    server = await start_in_process(
        config_from({"client": {"token": {"hmac_secret_key": SECRET}}, **SETTINGS})
    )
    api = aiohttp.ClientSession()
    crowd = await CrowdProcess.start(server)
    try:
        await publish(api, server, -1)  # the API's keep-alive connection belongs to the baseline
        before = await settled(server, 0)
        await crowd.ask(f"join {SOAK_CONNECTIONS}")
        published = 0
        warm: Counts | None = None
        churning = 0.0
        for tick in range(SOAK_TICKS):
            churning += float(await crowd.ask(f"replace {CHURN}"))
            status, body = await publish(api, server, tick)
            assert status == 200 and "result" in body, body
            published += 1
            if tick == SOAK_TICKS // 5:
                warm = await settled(server, SOAK_CONNECTIONS)
        end = await settled(server, SOAK_CONNECTIONS)
        assert warm is not None
        assert end.tasks <= warm.tasks, (warm, end)
        assert end.fds <= warm.fds, (warm, end)
        if warm.timers is not None and end.timers is not None:
            assert end.timers <= warm.timers + CHURN, (warm, end)
        assert end.deadlines <= warm.deadlines + CHURN, (warm, end)
        assert end.rss_mib * 2**20 <= warm.rss_mib * 2**20 * RSS_GROWTH + RSS_SLACK, (warm, end)
        await crowd.ask("leave")
        after = await back_to(server, before)
        assert after.tasks <= before.tasks and after.fds <= before.fds, (before, after)
        if before.timers is not None and after.timers is not None:
            assert after.timers <= before.timers, (before, after)
        assert after.deadlines <= before.deadlines, (before, after)
    finally:
        await crowd.stop()
        await api.close()
        await server.close()
    _record(before, warm, end, after, published, round(SOAK_TICKS * CHURN / churning, 1))


SECRET = "soak-secret-of-at-least-thirty-two-bytes"
SETTINGS: dict[str, Any] = {
    "http_api": {"key": "soak-key"},
    "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
}


def _record(
    before: Counts, warm: Counts, end: Counts, after: Counts, published: int, churn_rate: float
) -> None:
    results = os.environ.get("RELIABILITY_RESULTS")
    if results:
        figures = {
            "connections": SOAK_CONNECTIONS,
            "ticks": SOAK_TICKS,
            "replaced": SOAK_TICKS * CHURN,
            "replaced_per_second": churn_rate,
            "published": published,
            "counts": {
                name: asdict(c)
                for name, c in (("before", before), ("warm", warm), ("end", end), ("after", after))
            },
        }
        Path(results).write_text(json.dumps(figures))
