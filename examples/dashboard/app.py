"""A live dashboard on aiohttp with rotary mounted as a sub-application.

A background task of the aiohttp application samples the process every second (CPU use, event
loop lag, connected clients, load average) and publishes the sample to the ``metrics`` channel;
the browser page, on centrifuge-js connected through ``rotary.mount.aiohttp_app`` at
``/rotary``, plots them. The channel keeps the last two minutes of samples, so a page that opens
starts with a full chart (history) and one that lost its connection fills the gap (recovery).
Viewers are anonymous and read-only: anyone may subscribe to ``metrics``, nobody may publish.

Run it with ``python -m examples.dashboard`` (see README.md beside this file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import rotary
from rotary import ChannelOptions, ConnectReply, Node
from rotary.mount import aiohttp_app

HERE = Path(__file__).parent
CENTRIFUGE_JS = Path(
    os.environ.get(
        "CENTRIFUGE_JS", HERE.parents[1] / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"
    )
)
"""The browser SDK, from npm (``npm install centrifuge``): the page loads nothing from a CDN."""

PREFIX = "/rotary"
METRICS = "metrics"
METRICS_OPTIONS = ChannelOptions(history_size=120, history_ttl=300, force_recovery=True)
"""Two minutes of one-second samples, recovered after a reconnect."""
NODE = web.AppKey("node", Node)


def dashboard_node() -> Node:
    """The dashboard's node: anonymous viewers of the metrics channel, nothing else."""
    node = Node(channel_options=lambda channel: METRICS_OPTIONS if channel == METRICS else ChannelOptions())

    @node.on_connecting
    async def connecting(event: rotary.ConnectingEvent) -> ConnectReply:
        return ConnectReply(user="")  # anyone may watch

    @node.on_subscribe
    async def subscribe(event: rotary.SubscribeEvent) -> None:
        if event.channel != METRICS:
            raise rotary.UnknownChannel()

    # No on_publish: clients may not publish (error 103); only the server's sampler does.
    return node


@dataclass
class Sampler:
    """Samples the process: CPU use since the previous sample, and how late the event loop woke
    for it (``lateness``: the publisher's sleep overshoot, a measure of a busy loop)."""

    node: Node
    clock: Callable[[], float] = time.monotonic
    cpu: Callable[[], float] = time.process_time
    wall: Callable[[], float] = time.time
    _last: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        self._last = (self.clock(), self.cpu())

    def sample(self, lateness: float = 0.0) -> dict[str, Any]:
        now, cpu = self.clock(), self.cpu()
        elapsed = now - self._last[0]
        busy = (cpu - self._last[1]) / elapsed if elapsed > 0 else 0.0
        self._last = (now, cpu)
        info = self.node.info()
        return {
            "time": round(self.wall() * 1000),
            "cpu_percent": round(100 * busy, 1),
            "loop_lag_ms": round(1000 * max(lateness, 0.0), 2),
            "clients": info.num_clients,
            "load1": round(os.getloadavg()[0], 2),
        }


async def publish_metrics(node: Node, sampler: Sampler, interval: float) -> None:
    """Publishes a sample every ``interval`` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        await node.publish(METRICS, sampler.sample(lateness=loop.time() - due))


def create_app(node: Node | None = None, interval: float = 1.0) -> web.Application:
    """The aiohttp application: the page, centrifuge-js, rotary under ``/rotary``, and the node and
    the publisher started and stopped with the application (``cleanup_ctx``)."""
    node = node or dashboard_node()
    app = web.Application()
    app[NODE] = node

    async def run_node(app: web.Application) -> AsyncIterator[None]:
        async with node:
            publisher = asyncio.get_running_loop().create_task(publish_metrics(node, Sampler(node), interval))
            yield
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(HERE / "static" / "index.html")

    async def centrifuge_js(request: web.Request) -> web.StreamResponse:
        if not CENTRIFUGE_JS.is_file():
            raise web.HTTPNotFound(text="centrifuge-js not found: run `npm install` (or set CENTRIFUGE_JS)")
        return web.FileResponse(CENTRIFUGE_JS, headers={"content-type": "text/javascript"})

    app.cleanup_ctx.append(run_node)
    app.router.add_get("/", index)
    app.router.add_get("/centrifuge.js", centrifuge_js)
    app.add_subapp(PREFIX, aiohttp_app(node))
    return app
