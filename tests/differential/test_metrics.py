"""Centrifugo and rotary export the same Prometheus families for the same SDK traffic.

Both servers start from one config with ``prometheus.enabled``; centrifuge-python runs the same
session against each (JSON, then Protobuf: helpers/prometheus.py), then both ``/metrics`` are parsed
with prometheus_client. Every family Centrifugo exports must be in rotary's scrape with the same type
and label names, unless ``NOT_IN_ROTARY`` says why rotary cannot have it; and the counts that the
session fixes (commands, errors, disconnect codes, messages) must be equal.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
import pytest
from helpers.prometheus import WAIT, Scrape, Server, scrape, sdk_session

from differential.conftest import CONFIG, Pair
from differential.runner import API_KEY, SECRET

NOT_IN_ROTARY: dict[str, str] = {
    "go_": "the Go runtime's own metrics (garbage collector, goroutines, memory classes)",
    "process_network_": "Go's client reads /proc/<pid>/net/dev; prometheus_client's collector does not",
    "process_virtual_memory_max_bytes": "Go's client only; prometheus_client's collector has no such value",
    "centrifugo_shared_poll_": "shared poll subscriptions are not built (their keys are refused)",
    "centrifugo_map_broker_": "map subscriptions are not built (their keys are refused)",
    "centrifugo_broker_redis_pub_sub_dropped_messages": (
        "centrifuge's Redis PUB/SUB buffer drops messages when full; rotary's Redis engine reads PUB/SUB "
        "without such a buffer and drops nothing, so it has no such counter"
    ),
    "centrifugo_node_pub_sub_lag_seconds": (
        "publications carry no broker publish time in rotary's engines, so the lag cannot be measured"
    ),
}
"""Centrifugo's family name prefixes rotary does not export, with the reason."""

SAME_COUNTS = (
    "centrifugo_client_command_duration_seconds_count",
    "centrifugo_client_command_duration_seconds_histogram_count",
    "centrifugo_client_num_reply_errors_total",
    "centrifugo_client_num_server_disconnects_total",
    "centrifugo_transport_outgoing_close_count_total",
    "centrifugo_broker_publish_suppressed_count_total",
    "centrifugo_client_recover_total",
    "centrifugo_client_connections_accepted_total",
    "centrifugo_client_connections_inflight",
    "centrifugo_transport_messages_received_total",
    "centrifugo_transport_messages_sent_total",
    "centrifugo_api_command_duration_seconds_count",
    "centrifugo_api_command_errors_total",
    "centrifugo_node_survey_duration_seconds_histogram_count",
    "centrifugo_node_num_clients",
    "centrifugo_node_num_subscriptions",
)
"""Sample names whose every series the session fixes, so both servers must agree on them."""


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return {
        **CONFIG,
        "prometheus": {"enabled": True, "instrument_http_handlers": True},
        "uni_sse": {"enabled": True},
    }


async def uni_sse_session(server: Server, user: str, channel: str) -> None:
    """A unidirectional SSE connection with a server-side subscription: its connect push, one
    publication, then an API disconnect (a disconnect push) that ends the stream."""
    token = jwt.encode({"sub": user, "channels": [channel]}, server.secret, algorithm="HS256")
    url = f"{server.http_url}/connection/uni_sse?cf_connect={quote(json.dumps({'token': token}))}"
    pushes: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        async with asyncio.timeout(WAIT):
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                pushes.append(json.loads(line[len(b"data: ") :]))
                if len(pushes) == 1:
                    await server.api("publish", {"channel": channel, "data": {"uni": 1}})
                elif len(pushes) == 2:
                    await server.api(
                        "disconnect", {"user": user, "disconnect": {"code": 4501, "reason": "x"}}
                    )
    assert [next(iter(p.keys() - {"channel"})) for p in pushes] == ["connect", "pub", "disconnect"]


async def suppressed_publishes(server: Server, channel: str) -> None:
    """A publish repeated with its idempotency key, and one with an older version: both dropped."""
    once = {"channel": channel, "data": {"n": 1}, "idempotency_key": "once"}
    first = await server.api("publish", once)
    assert (await server.api("publish", once))["result"] == first["result"]
    await server.api("publish", {"channel": channel, "data": {"v": 2}, "version": 2})
    await server.api("publish", {"channel": channel, "data": {"v": 1}, "version": 1})


async def run(pair: Pair) -> tuple[Scrape, Scrape]:
    scrapes = []
    for target in (pair.centrifugo, pair.rotary):
        server = Server(target.ws_url, target.http_url, SECRET, API_KEY)
        for use_protobuf in (False, True):
            await sdk_session(
                server, f"metrics-{use_protobuf}", f"chat:metrics-{use_protobuf}", "locked:x", use_protobuf
            )
        await uni_sse_session(server, "metrics-uni", "plain:metrics-uni")
        await suppressed_publishes(server, "chat:metrics-suppressed")
        scrapes.append(await scrape(target.http_url))
    return scrapes[0], scrapes[1]


def _excused(name: str) -> bool:
    return any(name.startswith(prefix) for prefix in NOT_IN_ROTARY)


async def test_rotary_exports_every_family_centrifugo_exports(pair: Pair) -> None:
    centrifugo, rotary = await run(pair)
    theirs, ours = centrifugo.shapes(), rotary.shapes()
    missing = sorted(name for name in theirs if name not in ours and not _excused(name))
    assert missing == []
    different = {
        name: (shape, ours[name]) for name, shape in theirs.items() if name in ours and ours[name] != shape
    }
    assert different == {}
    excused_but_present = sorted(p for p in NOT_IN_ROTARY if any(n.startswith(p) for n in ours))
    assert excused_but_present == []  # an allowlist entry rotary no longer needs
    extra = sorted(name for name in ours if name not in theirs and name.startswith("centrifugo_"))
    print("families rotary exports that Centrifugo had no series of for this traffic:", extra)

    for name in SAME_COUNTS:
        assert rotary.series(name) == centrifugo.series(name), name
    # The traffic moves the families it is meant to move, so their equality above says something.
    for reason in ("idempotency", "version"):
        assert centrifugo.total("centrifugo_broker_publish_suppressed_count", reason=reason) == 1
    assert centrifugo.total("centrifugo_transport_messages_sent", frame_type="push_disconnect") == 1
