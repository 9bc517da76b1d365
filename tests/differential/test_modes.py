"""Handshake and access modes side by side: allowed origins, WebSocket subprotocols and the
``cf_protocol`` query, an insecure server API. See https://centrifugal.dev/docs/server/configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from differential.conftest import NAMESPACE_DEFAULTS, Pair
from differential.runner import SECRET, Api, Open, Scenario, check, connect, params, sub

GOOD = "http://good.example"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return {
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": [GOOD]},
        "http_api": {"insecure": True},
        "channel": {"namespaces": [{"name": "ns", **NAMESPACE_DEFAULTS}]},
    }


SCENARIOS = [
    Scenario("no-origin", [Open(), connect("o1")]),
    Scenario("good-origin", [Open(headers=(("Origin", GOOD),)), connect("o2")]),
    Scenario("evil-origin", [Open(headers=(("Origin", "http://evil.example"),))]),
    Scenario("good-origin-other-case", [Open(headers=(("Origin", "HTTP://GOOD.example"),))]),
    Scenario(
        "json-subprotocol", [Open(subprotocols=("centrifuge-json",)), connect("o3")], protocols=("json",)
    ),
    Scenario("unknown-subprotocol", [Open(subprotocols=("nosuch",)), connect("o4")], protocols=("json",)),
    Scenario(
        "cf-protocol-query",
        [Open(query="cf_protocol=protobuf", subprotocols=()), connect("o5")],
        protocols=("protobuf",),
    ),
    Scenario("cf-protocol-json-query", [Open(query="cf_protocol=json"), connect("o6")], protocols=("json",)),
    Scenario("cf-protocol-unknown", [Open(query="cf_protocol=nosuch"), connect("o7")], protocols=("json",)),
    Scenario("api-insecure", [Api("publish", {"channel": "ns:m1", "data": {}}, key=None)]),
    Scenario("api-insecure-wrong-key", [Api("publish", {"channel": "ns:m2", "data": {}}, key="nope")]),
    Scenario("subscribe", [Open(headers=(("Origin", GOOD),)), connect("o8"), sub("ns:m3")]),
]


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS))
async def test_modes(pairs: Callable[[str], Pair], scenario: Scenario, protocol: str) -> None:
    pair = pairs(protocol)
    await check(pair.centrifugo, pair.rotary, scenario, protocol, f"modes/{scenario.name}-{protocol}")
