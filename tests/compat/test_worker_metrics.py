"""`rotary --workers 2` with `prometheus.enabled`: one scrape shows the whole process group.

The workers share the port, so each scrape lands on either of them; each must show the numbers of
both added up (clients, accepted connections, commands), as one Centrifugo node would show its own.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compat.test_worker_processes import CLIENTS, connect_many
from helpers import redis_servers
from helpers.cluster import RotaryNode, cluster_nodes, eventually, print_logs, redis_config
from helpers.prometheus import scrape

pytestmark = pytest.mark.compat

SCRAPES = 12
"""Each on a new connection, so the kernel hands them to either worker (all on one: 1 in 2**11)."""


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[RotaryNode]:
    redis = redis_servers.start_standalone()
    config = {
        **redis_config(redis.addresses[0], redis_servers.unique_prefix()),
        "prometheus": {"enabled": True},
    }
    server = RotaryNode(tmp_path / "workers", config, args=("--workers", "2"))
    try:
        server.start(ready_lines=2)
        yield server
    finally:
        server.stop()
        redis.stop()
        print_logs([server])


async def test_every_scrape_adds_up_both_workers(workers: RotaryNode, sdk_clients: Any) -> None:
    channel = "chat:" + uuid.uuid4().hex[:12]
    await connect_many(sdk_clients, workers, channel)

    async def both_workers_serve() -> bool:
        counts = [node["num_clients"] for node in await cluster_nodes(workers)]
        return len(counts) == 2 and min(counts) > 0 and sum(counts) == CLIENTS

    await eventually(both_workers_serve, "info shows two workers sharing the clients")
    for _ in range(SCRAPES):
        found = await scrape(workers.http_url)
        assert found.value("centrifugo_node_num_clients") == CLIENTS
        assert found.value("centrifugo_node_num_subscriptions") == CLIENTS
        assert found.total("centrifugo_client_connections_accepted") == CLIENTS
        assert found.total("centrifugo_client_connections_inflight") == CLIENTS
        connects = found.value(
            "centrifugo_client_command_duration_seconds_histogram_count",
            method="connect",
            channel_namespace="",
        )
        assert connects == CLIENTS
        assert found.value("centrifugo_node_num_nodes") == 2
