"""rotary's ``/metrics`` moves as Centrifugo's does under centrifuge-python's traffic.

The scrape is parsed with prometheus_client's parser; each number checked is what Centrifugo's
families hold after the same session (tests/differential/test_metrics.py compares the families
themselves). See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from compat.conftest import RotaryServer, unique_channel
from helpers.prometheus import Server, scrape, sdk_session

pytestmark = pytest.mark.compat

PROMETHEUS = {"prometheus": {"enabled": True, "instrument_http_handlers": True}}
WS = {"transport": "websocket", "channel_namespace": ""}


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
async def test_counters_follow_sdk_traffic(
    start_rotary: Callable[[dict[str, Any]], RotaryServer], use_protobuf: bool
) -> None:
    rotary = start_rotary(PROMETHEUS)
    server = Server(rotary.ws_url, rotary.http_url, rotary.secret, rotary.api_key)
    before = await scrape(rotary.http_url)
    assert before.value("centrifugo_node_num_clients") == 0
    assert before.value("centrifugo_node_build", version="0.1.0") == 1

    async def while_subscribed() -> None:
        now = await scrape(rotary.http_url)
        for gauge in ("clients", "users", "subscriptions", "channels"):
            assert now.value(f"centrifugo_node_num_{gauge}") == 1, gauge
        assert now.total("centrifugo_client_connections_inflight", transport="websocket") == 1
        assert now.total("centrifugo_client_subscriptions_inflight") == 1

    channel = f"chat:{unique_channel()}"
    await sdk_session(server, "metrics-user", channel, "forbidden", use_protobuf, while_subscribed)
    after = await scrape(rotary.http_url)

    def commands(method: str) -> float:
        return after.value(
            "centrifugo_client_command_duration_seconds_count", method=method, channel_namespace=""
        )

    # Two connects (the second after the reconnecting 4000); subscribes: the channel twice, and
    # the forbidden one, refused with 103 as the RPC is with 108.
    assert (commands("connect"), commands("subscribe"), commands("publish")) == (2, 3, 1)
    assert commands("history") == commands("rpc") == 1
    assert (
        after.value(
            "centrifugo_client_command_duration_seconds_histogram_count",
            method="connect",
            channel_namespace="",
        )
        == 2
    )
    errors = "centrifugo_client_num_reply_errors"
    assert after.value(errors, method="rpc", code="108", channel_namespace="") == 1
    assert after.value(errors, method="subscribe", code="103", channel_namespace="") == 1
    for code in ("4000", "4500"):
        assert after.value("centrifugo_client_num_server_disconnects", code=code) == 1
        assert after.value("centrifugo_transport_outgoing_close_count", transport="websocket", code=code) == 1
    assert (
        after.value(
            "centrifugo_client_recover",
            recovered="yes",
            has_recovered_publications="no",
            channel_namespace="",
        )
        == 1
    )

    received = "centrifugo_transport_messages_received"
    sent = "centrifugo_transport_messages_sent"
    assert after.value(received, frame_type="connect", **WS) == 2
    assert after.value(received, frame_type="publish", **WS) == 1
    assert after.value(sent, frame_type="subscribe", **WS) == 3
    assert after.value(sent, frame_type="push_publication", **WS) == 2  # its own and the API's
    assert after.value(sent + "_size", frame_type="push_publication", **WS) > 0
    assert after.value(received + "_size", frame_type="connect", **WS) > 0

    accepted = after.total("centrifugo_client_connections_accepted", transport="websocket")
    assert accepted == 2
    assert after.total("centrifugo_client_connections_inflight") == 0
    assert after.total("centrifugo_client_subscriptions_inflight") == 0
    for gauge in ("clients", "users", "subscriptions", "channels"):
        assert after.value(f"centrifugo_node_num_{gauge}") == 0, gauge

    api = {"protocol": "http"}
    assert after.value("centrifugo_api_command_duration_seconds_count", method="publish", **api) == 2
    assert (
        after.value("centrifugo_api_command_duration_seconds_histogram_count", method="disconnect", **api)
        == 2
    )
    assert after.value("centrifugo_api_command_errors_total", method="publish", error="107", **api) == 1
    http = "centrifugo_node_incoming_http_requests_total"
    assert after.value(http, path="/api/disconnect", method="POST", status="200") == 2
    assert after.value(http, path="/connection/websocket", method="GET", status="101") == 2
    assert after.value("centrifugo_node_messages_sent_count", type="publication", channel_namespace="") == 2
    assert after.value("promhttp_metric_handler_requests_total", code="200") == 2  # the earlier scrapes


async def test_metrics_off_by_default(rotary: RotaryServer) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(rotary.http_url + "/metrics") as response:
        assert response.status == 404


async def test_handler_prefix(start_rotary: Callable[[dict[str, Any]], RotaryServer]) -> None:
    rotary = start_rotary({"prometheus": {"enabled": True, "handler_prefix": "/custom/metrics/"}})
    found = await scrape(rotary.http_url, "/custom/metrics")
    assert found.value("centrifugo_node_num_nodes") == 1
    assert "centrifugo_node_incoming_http_requests" not in found.families  # not instrumented
