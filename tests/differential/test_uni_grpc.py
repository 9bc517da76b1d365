"""Unidirectional GRPC side by side: ``CentrifugoUniStream.Consume`` on Centrifugo and on rotary.

Both servers start from one config but for ``uni_grpc.port``: each gets a free port of its own (two
listeners cannot share one, and Centrifugo's default, 11000, is fixed). The pushes are compared in
their JSON form. See https://centrifugal.dev/docs/transports/uni_grpc.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.centrifugo import centrifugo_process, reference_config
from helpers.env import free_port
from helpers.server import rotary_process

from differential.conftest import CONFIG, Pair
from differential.runner import Api, Events, Grpc, Scenario, Target, check, params, token


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    directory = tmp_path_factory.mktemp("differential-uni-grpc")
    ports = {"centrifugo": free_port(), "rotary": free_port()}

    def config(name: str) -> dict[str, Any]:
        return reference_config(
            {**CONFIG, "uni_grpc": {"enabled": True, "address": "127.0.0.1", "port": ports[name]}}
        )

    with contextlib.ExitStack() as stack:
        centrifugo = stack.enter_context(centrifugo_process(directory / "centrifugo", config("centrifugo")))
        rotary = stack.enter_context(
            rotary_process(directory / "rotary", config("rotary"), "--http_server.address", "127.0.0.1")
        )
        yield Pair(
            Target("centrifugo", centrifugo.http_url, f"127.0.0.1:{ports['centrifugo']}"),
            Target("rotary", rotary.http_url, f"127.0.0.1:{ports['rotary']}"),
        )


SCENARIOS = [
    Scenario("uni-grpc-connect", [Grpc({"token": token("g1")})]),
    Scenario(
        "uni-grpc-publication-and-disconnect",
        [
            Grpc({"token": token("g2", channels=["plain:g2"])}),
            Api("publish", {"channel": "plain:g2", "data": {"text": "hi"}}),
            Events(1, "g"),
            Api("subscribe", {"user": "g2", "channel": "plain:g2b"}),
            Events(1, "g"),
            Api("disconnect", {"user": "g2"}),
            Events(2, "g"),
        ],
    ),
    Scenario("uni-grpc-bad-token", [Grpc({"token": token("g3", "z" * 40)}, events=2)]),
    Scenario("uni-grpc-expired-token", [Grpc({"token": token("g4", exp=1)}, events=2)]),
    Scenario("uni-grpc-no-token", [Grpc({}, events=2)]),
]


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS, ws_protocols=False))
async def test_uni_grpc(pair: Pair, scenario: Scenario, protocol: str) -> None:
    await check(pair.centrifugo, pair.rotary, scenario, protocol, f"uni-grpc/{scenario.name}")
