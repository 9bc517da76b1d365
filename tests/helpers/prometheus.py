"""Reading a server's ``/metrics`` with prometheus_client's own parser, and one SDK session whose
traffic moves the counters Centrifugo exports (connect, subscribe, publish, errors, recovery,
server disconnects, API calls). The same session drives Centrifugo and rotary in the differential
test, and rotary alone in the compat test.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import centrifuge
import jwt
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

WAIT = 5.0

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class Scrape:
    families: dict[str, Metric]
    samples: dict[Key, float]

    def value(self, name: str, /, **labels: str) -> float:
        """The sample ``name`` with exactly these labels; 0 when the series does not exist yet.

        The parser names a counter's samples ``<name>_total`` whatever the exposition says, so
        Centrifugo's counter names (most without ``_total``) are looked up both ways.
        """
        key = frozenset(labels.items())
        return self.samples.get((name, key), self.samples.get((name + "_total", key), 0.0))

    def total(self, name: str, /, **labels: str) -> float:
        """The sum of every series of ``name`` whose labels include these."""
        wanted = set(labels.items())
        names = (name, name + "_total")
        return sum(v for (n, ls), v in self.samples.items() if n in names and wanted <= ls)

    def series(self, sample_name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every series of one sample name, by labels."""
        return {labels: v for (n, labels), v in self.samples.items() if n == sample_name}

    def shapes(self) -> dict[str, tuple[str, frozenset[str]]]:
        """Each family's type and label names (without ``le`` and ``quantile``)."""
        found: dict[str, tuple[str, frozenset[str]]] = {}
        for name, family in self.families.items():
            labels = {k for s in family.samples for k in s.labels} - {"le", "quantile"}
            found[name] = (family.type, frozenset(labels))
        return found


async def scrape(http_url: str, path: str = "/metrics") -> Scrape:
    async with aiohttp.ClientSession() as session, session.get(http_url + path) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain"), response.headers
        text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples}
    return Scrape(families, samples)


@dataclass
class Server:
    ws_url: str
    http_url: str
    secret: str
    api_key: str

    async def api(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.http_url}/api/{method}", json=payload, headers={"X-API-Key": self.api_key}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
        return body


class Events:
    """Every event of a client or subscription, in order, for awaiting the next of a kind."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def __getattr__(self, name: str) -> Any:
        async def record(ctx: Any) -> None:
            await self.queue.put((name, ctx))

        return record

    async def next(self, event: str) -> Any:
        async with asyncio.timeout(WAIT):
            while True:
                name, ctx = await self.queue.get()
                if name == event:
                    return ctx


async def sdk_session(
    server: Server,
    user: str,
    channel: str,
    forbidden: str,
    use_protobuf: bool,
    while_subscribed: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Connect, subscribe, publish and read back, history, two refused commands (an RPC without a
    proxy: 108; a channel without permissions: 103), an API publish and a refused one (107), an API
    channels call (a survey), a reconnecting disconnect (4000, then a recovering resubscribe) and a
    terminal one (4500)."""
    token = jwt.encode({"sub": user}, server.secret, algorithm="HS256")
    events = Events()
    client = centrifuge.Client(
        server.ws_url, token=token, events=events, use_protobuf=use_protobuf, timeout=WAIT, proxy=None
    )
    try:
        await client.connect()
        await events.next("on_connected")
        sub_events = Events()
        sub = client.new_subscription(channel, events=sub_events)
        await sub.subscribe()
        await sub_events.next("on_subscribed")
        if while_subscribed is not None:
            await while_subscribed()
        data: Any = b'{"n": 1}' if use_protobuf else {"n": 1}
        await sub.publish(data)
        await sub_events.next("on_publication")
        await sub.history(limit=10)
        try:
            await client.rpc("nothing", data)
        except centrifuge.ReplyError:
            pass
        refused_events = Events()
        await client.new_subscription(forbidden, events=refused_events).subscribe()
        await refused_events.next("on_unsubscribed")
        await server.api("publish", {"channel": channel, "data": {"n": 2}})
        await sub_events.next("on_publication")
        await server.api("publish", {"channel": "", "data": {}})
        await server.api("channels", {})
        await server.api("disconnect", {"user": user, "disconnect": {"code": 4000, "reason": "again"}})
        await events.next("on_connected")
        await sub_events.next("on_subscribed")
        await server.api("disconnect", {"user": user, "disconnect": {"code": 4500, "reason": "bye"}})
        await events.next("on_disconnected")
    finally:
        await client.disconnect()
