"""Proxy calls in the metrics: each call timed under Centrifugo's ``centrifugo_proxy_duration_seconds``
family with its protocol, type and proxy name, and a backend failure counted as a proxy error.
See https://centrifugal.dev/docs/server/observability and https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

from typing import Any

import pytest
from centrifuge import ReplyError
from helpers.prometheus import scrape
from helpers.proxy_backend import ProxyBackend, Status

pytestmark = pytest.mark.compat


async def test_proxy_calls_are_timed_and_failures_counted(
    backend: ProxyBackend, start_rotary: Any, sdk_clients: Any, over: str
) -> None:
    backend.answers["connect"] = lambda req: {"result": {"user": "alice"}}
    server = start_rotary(
        {
            "prometheus": {"enabled": True},
            "client": {
                "proxy": {
                    "connect": {
                        "enabled": True,
                        "endpoint": backend.endpoint(over, "connect"),
                        "timeout": "3s",
                    }
                }
            },
            "proxies": [{"name": "rpc-px", "endpoint": backend.endpoint(over, "rpc"), "timeout": "3s"}],
            "rpc": {"without_namespace": {"proxy_enabled": True, "proxy_name": "rpc-px"}},
        }
    )
    sdk = sdk_clients(server)
    await sdk.client.connect()
    await sdk.events.next("on_connected")
    backend.answers["rpc"] = lambda req: Status(500)
    with pytest.raises(ReplyError) as failed:
        await sdk.client.rpc("broken", {})
    assert failed.value.code == 100

    metrics = await scrape(server.http_url)
    connect = {"protocol": over, "type": "connect", "name": "default"}
    rpc = {"protocol": over, "type": "rpc", "name": "rpc-px"}
    histogram = "centrifugo_proxy_duration_seconds_histogram_count"
    assert metrics.value(histogram, **connect) == 1
    assert metrics.value(histogram, **rpc) == 1
    assert metrics.value("centrifugo_proxy_errors", **rpc) == 1
    assert metrics.value("centrifugo_proxy_errors", **connect) == 0
    assert metrics.value("centrifugo_proxy_inflight_requests", **rpc) == 0
