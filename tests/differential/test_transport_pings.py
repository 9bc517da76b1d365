"""Pings of the streaming transports side by side, with a short ``client.ping_interval``.

Unidirectional streams get ``{}`` pushes and owe nothing back; the emulated bidirectional ones get
``{}`` replies and must answer with a pong through ``POST /emulation`` within ``pong_timeout``, else
they are disconnected. The interval and timeout leave a loaded machine two seconds either way: to
answer a ping, and for an awaited ping or disconnect to come within a step's wait (runner.WAIT).
See https://centrifugal.dev/docs/transports/overview#pings.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from differential.conftest import CONFIG, Pair
from differential.runner import Events, Http, Scenario, check, params, token

ORIGIN = (("Origin", "http://good.example"),)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return {
        **CONFIG,
        "client": {**CONFIG["client"], "ping_interval": "3s", "pong_timeout": "2s"},
        "uni_sse": {"enabled": True},
        "uni_http_stream": {"enabled": True},
        "http_stream": {"enabled": True},
        "sse": {"enabled": True},
    }


def quote_json(value: Any) -> str:
    return quote(json.dumps(value))


def connect_command(user: str) -> dict[str, Any]:
    return {"id": 1, "connect": {"token": token(user)}}


def pong() -> Http:
    """The pong of an emulated connection: an empty command."""
    body = {"session": "$SESSION", "node": "$NODE", "data": "{}"}
    return Http("/emulation", "POST", body=body, headers=ORIGIN)


SCENARIOS = [
    Scenario(
        "uni-sse-ping",
        [
            Http(
                "/connection/uni_sse",
                query="cf_connect=" + quote_json({"token": token("p1")}),
                headers=ORIGIN,
                stream="s",
                events=2,
            )
        ],
    ),
    Scenario(
        "uni-http_stream-ping",
        [
            Http(
                "/connection/uni_http_stream",
                "POST",
                raw=json.dumps({"token": token("p2")}).encode(),
                headers=ORIGIN,
                stream="s",
                events=2,
            )
        ],
    ),
    Scenario(
        "http_stream-no-pong",
        [
            Http(
                "/connection/http_stream",
                "POST",
                raw=json.dumps(connect_command("p3")).encode(),
                headers=(*ORIGIN, ("Content-Type", "application/json")),
                stream="s",
                events=1,
            ),
            Events(1),
            Events(2),
        ],
    ),
    Scenario(
        "sse-pong",
        [
            Http(
                "/connection/sse",
                query="cf_connect=" + quote_json(connect_command("p4")),
                headers=ORIGIN,
                stream="s",
                events=2,
            ),
            pong(),
            Events(1),
        ],
    ),
]


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS, ws_protocols=False))
async def test_transport_pings(pair: Pair, scenario: Scenario, protocol: str) -> None:
    await check(pair.centrifugo, pair.rotary, scenario, protocol, f"pings/{scenario.name}")
