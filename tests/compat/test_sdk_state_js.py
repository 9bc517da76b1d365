"""The npm ``centrifuge`` SDK keeps stream state and connection state with rotary, JSON and Protobuf.

The same behaviours as test_sdk_state_python.py, each driven by a ``js/state_*.mjs`` script that
prints one JSON line of what it observed (see test_sdk_js.py for how scripts are run). The epoch
test talks with its script while it runs: the script prints ``{"step": "restart"}`` and waits for
a line on stdin while the test restarts the server.
See https://centrifugal.dev/docs/transports/client_api and
https://centrifugal.dev/docs/server/history_and_recovery.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_CONFIG, RotaryServer, merged, running_rotary
from helpers import cluster
from helpers.cluster import RotaryNode, memory_config
from test_sdk_state_python import CLOCK_SLACK, GRACE, MARGIN, STATE_CONFIG, TOKEN_LIFETIME

pytestmark = pytest.mark.compat

SCRIPTS = Path(__file__).with_name("js")
SCRIPT_TIMEOUT = 30.0

Scenario = Callable[[str], Any]


@pytest.fixture(scope="module")
def rotary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryServer]:
    """The shared server of this module: short expiry grace and a ``cache`` namespace."""
    with running_rotary(tmp_path_factory.mktemp("rotary"), merged(DEFAULT_CONFIG, STATE_CONFIG)) as server:
        yield server


@pytest.fixture(params=["json", "protobuf"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def script_env(protocol: str, ws_url: str, http_url: str, secret: str, api_key: str) -> dict[str, str]:
    return {
        **os.environ,
        "ROTARY_WS_URL": ws_url,
        "ROTARY_HTTP_URL": http_url,
        "ROTARY_SECRET": secret,
        "ROTARY_API_KEY": api_key,
        "ROTARY_PROTOCOL": protocol,
        "ROTARY_TOKEN_LIFETIME": str(TOKEN_LIFETIME),
        "ROTARY_EXPIRY_GRACE": str(GRACE),
        "ROTARY_EXPIRY_MARGIN": str(MARGIN),
    }


def run_script(node: str, server: RotaryServer, protocol: str, name: str, **extra_env: str) -> Any:
    """Runs ``js/<name>.mjs`` against ``server``; the JSON line it printed last."""
    done = subprocess.run(
        [node, str(SCRIPTS / f"{name}.mjs")],
        check=False,
        capture_output=True,
        text=True,
        env=script_env(protocol, server.ws_url, server.http_url, server.secret, server.api_key) | extra_env,
        timeout=SCRIPT_TIMEOUT,
    )
    assert done.returncode == 0, f"{name}.mjs failed:\n{done.stderr}\n{done.stdout}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def scenario(node: str, rotary: RotaryServer, protocol: str) -> Scenario:
    """``scenario(name)`` runs ``js/<name>.mjs`` against the shared server; what it printed."""
    return lambda name: run_script(node, rotary, protocol, name)


def test_missed_publications_are_recovered_once_and_in_order(scenario: Scenario) -> None:
    seen = scenario("state_recovery")
    assert (seen["wasRecovering"], seen["recovered"]) == (True, True)
    assert seen["publications"] == [[n, {"n": n}] for n in range(1, 6)]


def test_recovery_is_refused_after_the_epoch_changed(node: str, protocol: str, tmp_path: Path) -> None:
    server = RotaryNode(tmp_path / "node", memory_config())
    server.start()
    try:
        env = script_env(protocol, server.ws_url, server.http_url, cluster.SECRET, cluster.API_KEY)
        with subprocess.Popen(
            [node, str(SCRIPTS / "state_epoch.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        ) as script:
            assert script.stdin is not None and script.stdout is not None
            assert json.loads(script.stdout.readline()) == {"step": "restart"}
            server.stop()
            server.start()
            script.stdin.write("\n")
            script.stdin.flush()
            output, _ = script.communicate(timeout=SCRIPT_TIMEOUT)
        assert script.returncode == 0, output
        seen = json.loads(output.strip().splitlines()[-1])
    finally:
        server.stop()
        print(f"--- rotary log ---\n{server.log()}")
    assert (seen["wasRecovering"], seen["recovered"]) == (True, False)
    assert seen["epochChanged"]
    assert seen["publications"] == [[1, {"n": 1}], [1, {"n": 2}]]


def test_cache_recovery_gives_the_latest_publication(scenario: Scenario) -> None:
    assert scenario("state_cache") == {"publications": [[3, {"n": 3}]]}


def test_presence_and_join_leave_of_two_users(scenario: Scenario) -> None:
    seen = scenario("state_presence")
    ann, bob = ["ann", seen["ids"]["ann"]], ["bob", seen["ids"]["bob"]]
    assert seen["joins"] == [ann, bob]  # a subscriber is told of its own join first
    assert seen["leaves"] == [bob]
    assert seen["presence"] == {ann[1]: "ann", bob[1]: "bob"}
    assert seen["stats"] == [2, 2]
    assert seen["statsAfter"] == [1, 1]


def test_token_refresh_keeps_the_connection_and_the_subscription(scenario: Scenario) -> None:
    seen = scenario("state_refresh")
    assert seen["connectionTokens"] >= 1
    assert seen["subscriptionTokens"] >= 2  # the subscribe, then at least one refresh
    assert seen["state"] == {"client": "connected", "sub": "subscribed"}
    assert (seen["connecting"], seen["disconnected"]) == (1, 0)  # only the initial connect
    assert (seen["subscribing"], seen["unsubscribed"]) == (1, 0)  # only the initial subscribe
    assert seen["publication"] == [1, {"n": 1}]


def test_tokens_that_cannot_be_refreshed_end_the_connection_or_the_subscription(scenario: Scenario) -> None:
    seen = scenario("state_expiry")
    connection, subscription = seen["connection"], seen["subscription"]
    assert connection.pop("early") <= CLOCK_SLACK  # not before exp + grace
    assert subscription.pop("early") <= CLOCK_SLACK
    assert connection == {"code": 3005, "reason": "connection expired"}
    assert subscription == {"code": 2501, "reason": "subscription expired", "client": "connected"}


def test_server_side_subscriptions_from_the_token_and_from_the_api(scenario: Scenario) -> None:
    expected = {"subscribedTo": True, "publishedTo": True, "data": {"n": 1}}
    assert scenario("state_server_subs") == {"token": expected, "api": expected}


def test_api_disconnect_reaches_the_sdk_with_its_code_and_reason(scenario: Scenario) -> None:
    assert scenario("state_api_disconnect") == {
        "terminal": {"code": 4501, "reason": "go away", "state": "disconnected"},
        "reconnect": {"code": 4001, "reason": "go away", "state": "connecting"},
    }
