"""Limits set to 0 in rotary and Centrifugo side by side: centrifuge takes 0 as "its default", not
as "no limit" (``websocket.message_size_limit`` 0 is 65536 bytes, ``client.channel_limit`` 0 is 128
channels, ``channel.max_length`` 0 is 255 bytes, ``client.queue_max_size`` 0 is 1 MB).
See https://centrifugal.dev/docs/server/configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from differential.conftest import CONFIG, Pair
from differential.runner import Api, Closed, Pushes, Scenario, Send, alive, check, params, sub, ws


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return {
        **CONFIG,
        "client": {**CONFIG["client"], "channel_limit": 0, "queue_max_size": 0},
        "channel": {**CONFIG["channel"], "max_length": 0},
        "websocket": {"message_size_limit": 0},
    }


def rpc_of(size: int) -> str:
    """A JSON rpc command about ``size`` bytes long."""
    return '{"id": 9, "rpc": {"data": "' + "x" * (size - 30) + '"}}'


SCENARIOS = [
    Scenario("message-under-default-limit", [*ws(Send(rpc_of(60000)), alive(), user="z1")]),
    Scenario("message-over-default-limit", [*ws(Send(rpc_of(70000)), Closed(), user="z2")]),
    Scenario(
        "channels-under-default-limit",
        [*ws(sub("plain:z3a"), sub("plain:z3b"), user="z3")],
    ),
    Scenario(
        "channel-lengths-around-default",
        [*ws(sub("plain:" + "y" * 249), sub("plain:" + "y" * 250), alive(), user="z4")],
    ),
    Scenario(
        "publication-with-default-queue",
        [
            *ws(
                sub("plain:z5"),
                Api("publish", {"channel": "plain:z5", "data": {"n": 1}}),
                Pushes(1),
                user="z5",
            )
        ],
    ),
]


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS, ws_protocols=False))
async def test_zero_limits(pairs: Callable[[str], Pair], scenario: Scenario, protocol: str) -> None:
    pair = pairs(protocol)
    await check(pair.centrifugo, pair.rotary, scenario, protocol, f"zero-limits/{scenario.name}")
