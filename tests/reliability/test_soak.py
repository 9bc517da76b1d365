"""Soak: connections churn while publications flow; nothing the server holds grows with time.

An in-process server and SOAK_CONNECTIONS WebSocket clients subscribed to one channel. Every tick
a few clients leave and as many new ones connect and subscribe, and one publication goes out
through the HTTP API. The resources are counted, not guessed: asyncio tasks, open file
descriptors, scheduled timer handles (on the standard asyncio loop, whose schedule is visible),
the hub's clients and channel subscribers, and RSS, after a warm-up and again at the end, with
the same number of connections open. Then every client leaves and the counts fall back to where
they were before the first connection.

The suite's run is short; the reliability kit runs it long (``ROTARY_SOAK_CONNECTIONS``,
``ROTARY_SOAK_TICKS``). With ``ROTARY_RELIABILITY_RESULTS=<file>`` the figures go there as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from helpers.env import raise_open_files
from helpers.server import InProcessServer, WsClient, start_in_process

from reliability.fuzz.harness import config_from

SOAK_CONNECTIONS = int(os.environ.get("ROTARY_SOAK_CONNECTIONS", "100"))
SOAK_TICKS = int(os.environ.get("ROTARY_SOAK_TICKS", "60"))
CHURN = max(1, SOAK_CONNECTIONS // 40)
"""Clients replaced per tick, all at once."""
CONNECT_BATCH = 100
"""Clients connecting at once while the crowd is built."""
RSS_GROWTH = 1.2
RSS_SLACK = 8 << 20


@dataclass
class Counts:
    tasks: int
    fds: int
    timers: int | None
    clients: int
    subscribers: int
    rss_mib: float


def counts(server: InProcessServer) -> Counts:
    loop = asyncio.get_running_loop()
    scheduled = getattr(loop, "_scheduled", None)
    timers = None if scheduled is None else sum(1 for handle in scheduled if not handle.cancelled())
    rss = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return Counts(
        tasks=len(asyncio.all_tasks()),
        fds=len(os.listdir("/proc/self/fd")),
        timers=timers,
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
    """The counts once the server has caught up with the clients (every leave processed)."""
    for _ in range(200):
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


async def test_churn_and_publications_leak_nothing() -> None:
    raise_open_files(2 * (SOAK_CONNECTIONS + CHURN) + 256)  # both ends of each, and the closing ones
    rng = random.Random(7)
    server = await start_in_process(
        config_from({"client": {"token": {"hmac_secret_key": SECRET}}, **SETTINGS})
    )
    # The test client's pool holds 100 connections: the WebSockets get a pool without a limit, and
    # the API calls a pool of their own.
    sockets = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    api = aiohttp.ClientSession()

    async def join(user: str) -> WsClient:
        return await server.connect(user, "soak", session=sockets)

    async def replace(tick: int) -> None:
        leaving = clients.pop(rng.randrange(len(clients)))
        await leaving.ws.close()
        server.sockets.remove(leaving)
        clients.append(await join(f"t{tick}"))

    try:
        await publish(api, server, -1)  # the API's keep-alive connection belongs to the baseline
        before = await settled(server, 0)
        clients: list[WsClient] = []
        for start in range(0, SOAK_CONNECTIONS, CONNECT_BATCH):
            batch = range(start, min(start + CONNECT_BATCH, SOAK_CONNECTIONS))
            clients.extend(await asyncio.gather(*(join(f"u{n}") for n in batch)))
        published = 0
        warm: Counts | None = None
        churning = 0.0
        for tick in range(SOAK_TICKS):
            began = time.monotonic()
            await asyncio.gather(*(replace(tick) for _ in range(CHURN)))
            churning += time.monotonic() - began
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
        assert end.rss_mib * 2**20 <= warm.rss_mib * 2**20 * RSS_GROWTH + RSS_SLACK, (warm, end)
        await asyncio.gather(*(client.ws.close() for client in clients))
        server.sockets.clear()
        after = await back_to(server, before)
        assert after.tasks <= before.tasks and after.fds <= before.fds, (before, after)
        if before.timers is not None and after.timers is not None:
            assert after.timers <= before.timers, (before, after)
    finally:
        await sockets.close()
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
    results = os.environ.get("ROTARY_RELIABILITY_RESULTS")
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
