"""Limits and connection options of rotary and Centrifugo side by side, from one config with small
limits: channels per connection, connections per user, history and recovery sizes, message size,
channel length, anonymous connections and the server time in the connect reply.
See https://centrifugal.dev/docs/server/configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from differential.conftest import NAMESPACE_DEFAULTS, Pair
from differential.runner import (
    API_KEY,
    SECRET,
    Api,
    Closed,
    Cmd,
    Open,
    Scenario,
    Send,
    alive,
    check,
    connect,
    params,
    sub,
    ws,
)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return {
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "allowed_origins": ["*"],
            "channel_limit": 2,
            "user_connection_limit": 1,
            "history_max_publication_limit": 2,
            "recovery_max_publication_limit": 2,
            "connect_include_server_time": True,
            "allow_anonymous_connect_without_token": True,
        },
        "websocket": {"message_size_limit": 1024},
        "http_api": {"key": API_KEY},
        "channel": {
            "max_length": 20,
            "namespaces": [
                {
                    "name": "ns",
                    **NAMESPACE_DEFAULTS,
                    "history_size": 10,
                    "history_ttl": "300s",
                    "allow_recovery": True,
                },
                {"name": "anon", "allow_subscribe_for_anonymous": True, "allow_subscribe_for_client": True},
            ],
        },
    }


SCENARIOS = [
    Scenario("server-time", [Open(), connect("t1")]),
    Scenario("channel-limit", [*ws(sub("ns:cl1"), sub("ns:cl2"), sub("ns:cl3"), alive(), user="cl")]),
    Scenario(
        "user-connection-limit",
        [*ws(user="ucl"), Open("b"), connect("ucl", "b"), Closed("b"), alive()],
    ),
    Scenario(
        "history-limit",
        [
            *[Api("publish", {"channel": "ns:hl", "data": {"n": n}}) for n in range(4)],
            *ws(
                sub("ns:hl"),
                Cmd({"history": {"channel": "ns:hl", "limit": -1}}),
                Cmd({"history": {"channel": "ns:hl", "limit": 5}}),
                Cmd({"history": {"channel": "ns:hl", "limit": 1}}),
                user="hl",
            ),
            Api("history", {"channel": "ns:hl", "limit": -1}),
        ],
    ),
    Scenario(
        "recovery-limit",
        [
            *[Api("publish", {"channel": "ns:rl", "data": {"n": n}}) for n in range(4)],
            *ws(sub("ns:rl", recover=True, recoverable=True, offset=0, epoch="$EPOCH"), user="rl"),
        ],
    ),
    Scenario(
        "message-too-big",
        [*ws(Send('{"id": 9, "rpc": {"data": "' + "x" * 2000 + '"}}'), Closed(), user="mb")],
    ),
    Scenario("channel-too-long", [*ws(sub("ns:" + "x" * 30), alive(), user="ctl")]),
    Scenario("channel-at-max-length", [*ws(sub("ns:" + "x" * 17), user="cml")]),
    Scenario("anonymous", [Open(), Cmd({"connect": {}}), sub("anon:a1"), sub("ns:a2"), alive()]),
]


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS))
async def test_limits(pairs: Callable[[str], Pair], scenario: Scenario, protocol: str) -> None:
    pair = pairs(protocol)
    await check(pair.centrifugo, pair.rotary, scenario, protocol, f"limits/{scenario.name}-{protocol}")
