"""The npm ``centrifuge`` SDK over the bidirectional emulation transports: HTTP streaming (JSON and
Protobuf) and SSE (JSON only, as the SDK supports it), with commands through ``POST /emulation``.

The same ``js/*.mjs`` scenarios as over WebSocket, run with ``ROTARY_TRANSPORT`` set, so that the
SDK sees the same server behaviour whichever transport carries it; plus ``stream_cut``, where the
server ends the stream and the SDK reconnects and recovers what it missed.
See https://centrifugal.dev/docs/transports/http_stream and https://centrifugal.dev/docs/transports/sse.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import DEFAULT_CONFIG, RotaryServer, merged, running_rotary
from test_sdk_state_js import SCRIPT_TIMEOUT, SCRIPTS, script_env
from test_sdk_state_python import CLOCK_SLACK, STATE_CONFIG

pytestmark = pytest.mark.compat

EMULATION_CONFIG: dict[str, Any] = {
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    "websocket": {"disabled": True},  # nothing can fall back to WebSocket unnoticed
}

Scenario = Callable[[str], Any]


@pytest.fixture(scope="module")
def rotary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryServer]:
    config = merged(merged(DEFAULT_CONFIG, STATE_CONFIG), EMULATION_CONFIG)
    with running_rotary(tmp_path_factory.mktemp("rotary"), config) as server:
        yield server


@pytest.fixture(
    params=[("http_stream", "json"), ("http_stream", "protobuf"), ("sse", "json")],
    ids=["http_stream-json", "http_stream-protobuf", "sse-json"],
)
def transport(request: pytest.FixtureRequest) -> tuple[str, str]:
    name, protocol = request.param
    return str(name), str(protocol)


@pytest.fixture
def scenario(node: str, rotary: RotaryServer, transport: tuple[str, str]) -> Scenario:
    """``scenario(name)`` runs ``js/<name>.mjs`` over the transport under test; what it printed."""
    name, protocol = transport

    def run(script: str) -> Any:
        environment = script_env(protocol, rotary.ws_url, rotary.http_url, rotary.secret, rotary.api_key)
        environment["ROTARY_TRANSPORT"] = name
        done = subprocess.run(
            [node, str(SCRIPTS / f"{script}.mjs")],
            check=False,
            capture_output=True,
            text=True,
            env=environment,
            timeout=SCRIPT_TIMEOUT,
        )
        assert done.returncode == 0, f"{script}.mjs over {name} failed:\n{done.stderr}\n{done.stdout}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


def test_connect_with_jwt(scenario: Scenario) -> None:
    assert scenario("connect_jwt") == {"state": "connected"}


def test_subscribe(scenario: Scenario) -> None:
    seen = scenario("subscribe")
    assert seen["subscribedTo"] == seen["channel"]
    assert seen["recoverable"] and seen["positioned"]
    assert seen["state"] == "subscribed"


def test_publication_from_server_api(scenario: Scenario) -> None:
    assert scenario("api_publication") == {"data": {"text": "from the API"}, "offset": 1, "channel": True}


def test_client_publish_reaches_another_client(scenario: Scenario) -> None:
    assert scenario("client_publish") == {"data": {"text": "hi"}, "user": "writer", "fromWriter": True}


def test_presence_and_presence_stats(scenario: Scenario) -> None:
    seen = scenario("presence")
    assert seen == {"users": ["ann", "bob"], "keyedByClient": True, "numClients": 2, "numUsers": 2}


def test_history(scenario: Scenario) -> None:
    seen = scenario("history")
    assert seen["data"] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert seen["offsets"] == [1, 2, 3]
    assert seen["offset"] == 3 and seen["epoch"]
    assert seen["latest"] == [{"n": 2}]


def test_recovery_after_reconnect(scenario: Scenario) -> None:
    seen = scenario("state_recovery")
    assert (seen["wasRecovering"], seen["recovered"]) == (True, True)
    assert seen["publications"] == [[n, {"n": n}] for n in range(1, 6)]


def test_recovery_after_the_server_cut_the_stream(scenario: Scenario) -> None:
    seen = scenario("stream_cut")
    assert seen["cut"] == {"code": 4002, "reason": "cut"}
    assert (seen["wasRecovering"], seen["recovered"]) == (True, True)
    assert seen["publications"] == [[n, {"n": n}] for n in range(1, 6)]


def test_token_refresh_keeps_the_connection_and_the_subscription(scenario: Scenario) -> None:
    seen = scenario("state_refresh")
    assert seen["connectionTokens"] >= 1
    assert seen["subscriptionTokens"] >= 2  # the subscribe, then at least one refresh
    assert seen["state"] == {"client": "connected", "sub": "subscribed"}
    assert (seen["connecting"], seen["disconnected"]) == (1, 0)  # only the initial connect
    assert (seen["subscribing"], seen["unsubscribed"]) == (1, 0)  # only the initial subscribe
    assert seen["publication"] == [1, {"n": 1}]


def test_api_disconnect_reaches_the_sdk_with_its_code_and_reason(scenario: Scenario) -> None:
    assert scenario("state_api_disconnect") == {
        "terminal": {"code": 4501, "reason": "go away", "state": "disconnected"},
        "reconnect": {"code": 4001, "reason": "go away", "state": "connecting"},
    }


def test_tokens_that_cannot_be_refreshed_end_the_connection_or_the_subscription(scenario: Scenario) -> None:
    seen = scenario("state_expiry")
    connection, subscription = seen["connection"], seen["subscription"]
    assert connection.pop("early") <= CLOCK_SLACK  # not before exp + grace
    assert subscription.pop("early") <= CLOCK_SLACK
    assert connection == {"code": 3005, "reason": "connection expired"}  # the stream's disconnect push
    assert subscription == {"code": 2501, "reason": "subscription expired", "client": "connected"}


def test_server_side_subscriptions_from_the_token_and_from_the_api(scenario: Scenario) -> None:
    expected = {"subscribedTo": True, "publishedTo": True, "data": {"n": 1}}
    assert scenario("state_server_subs") == {"token": expected, "api": expected}
