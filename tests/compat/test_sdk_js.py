"""The npm ``centrifuge`` SDK (5.x) drives rotary from Node.js, with its JSON and its Protobuf build.

Each scenario is a script in ``js/`` that does what an application would do with the SDK and prints
one JSON line of what it observed; the assertions live here. The scripts resolve ``centrifuge`` and
``ws`` from the repository's ``node_modules`` (``npm ci`` at the root).
See https://centrifugal.dev/docs/transports/client_api.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.compat

SCRIPTS = Path(__file__).with_name("js")
SCRIPT_TIMEOUT = 30.0


@pytest.fixture(params=["json", "protobuf"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scenario(node: str, rotary: Any, protocol: str) -> Any:
    """``scenario(name)`` runs ``js/<name>.mjs`` against the shared server and returns what it printed."""

    def run(name: str) -> Any:
        environment = {
            **os.environ,
            "ROTARY_WS_URL": rotary.ws_url,
            "ROTARY_HTTP_URL": rotary.http_url,
            "ROTARY_SECRET": rotary.secret,
            "ROTARY_API_KEY": rotary.api_key,
            "ROTARY_PROTOCOL": protocol,
        }
        done = subprocess.run(
            [node, str(SCRIPTS / f"{name}.mjs")],
            check=False,
            capture_output=True,
            text=True,
            env=environment,
            timeout=SCRIPT_TIMEOUT,
        )
        assert done.returncode == 0, f"{name}.mjs failed:\n{done.stderr}\n{done.stdout}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


def test_connect_with_jwt(scenario: Any) -> None:
    assert scenario("connect_jwt") == {"state": "connected"}


def test_subscribe(scenario: Any) -> None:
    seen = scenario("subscribe")
    assert seen["subscribedTo"] == seen["channel"]
    assert seen["recoverable"] and seen["positioned"]
    assert seen["state"] == "subscribed"


def test_publication_from_server_api(scenario: Any) -> None:
    assert scenario("api_publication") == {"data": {"text": "from the API"}, "offset": 1, "channel": True}


def test_client_publish_reaches_another_client(scenario: Any) -> None:
    assert scenario("client_publish") == {"data": {"text": "hi"}, "user": "writer", "fromWriter": True}


def test_presence_and_presence_stats(scenario: Any) -> None:
    seen = scenario("presence")
    assert seen == {"users": ["ann", "bob"], "keyedByClient": True, "numClients": 2, "numUsers": 2}


def test_history(scenario: Any) -> None:
    seen = scenario("history")
    assert seen["data"] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert seen["offsets"] == [1, 2, 3]
    assert seen["offset"] == 3 and seen["epoch"]
    assert seen["latest"] == [{"n": 2}]


def test_private_channel_needs_subscription_token(scenario: Any) -> None:
    seen = scenario("private_channel")
    assert seen["deniedCode"] == 103
    assert seen["asked"] == [seen["expected"]]
    assert seen["data"] == {"secret": True}


def test_server_side_subscription_from_token_channels(scenario: Any) -> None:
    seen = scenario("server_side_subscription")
    assert seen["subscribedTo"] == seen["publishedTo"] == seen["expected"]
    assert seen["data"] == {"server": "side"}


def test_wrong_token_disconnects_without_reconnect(scenario: Any) -> None:
    assert scenario("wrong_token") == {"code": 3500, "state": "disconnected", "connecting": 1}


def test_expired_token_is_refreshed_through_get_token(scenario: Any) -> None:
    seen = scenario("expired_token")
    assert seen["errors"] == [{"type": "connect", "code": 109}]
    assert seen["refreshed"] == 1
    assert seen["state"] == "connected"
