"""Centrifugo v6.9.1 and rotary, started from the same config file, for the differential scenarios.

Each test module gets one pair of servers (``pair``), started from ``CONFIG`` unless the module
defines its own ``config`` fixture; scenarios share them and keep apart by using their own channels
and users. Centrifugo comes from tests/tools/go-deps (helpers.centrifugo): without Go or the module
the scenarios skip with go-deps' error, and fail under CI=true.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers.centrifugo import centrifugo_process, reference_config
from helpers.server import rotary_process

from differential.runner import API_KEY, SECRET, Target

NAMESPACE_DEFAULTS: dict[str, Any] = {
    "allow_subscribe_for_client": True,
    "allow_publish_for_subscriber": True,
    "allow_presence_for_subscriber": True,
    "allow_history_for_subscriber": True,
}

CONFIG: dict[str, Any] = {
    "client": {
        "token": {"hmac_secret_key": SECRET},
        "allowed_origins": ["*"],
        "subscribe_to_user_personal_channel": {"enabled": False},
    },
    "http_api": {"key": API_KEY},
    "channel": {
        "max_length": 64,
        "namespaces": [
            {
                "name": "chat",
                **NAMESPACE_DEFAULTS,
                "presence": True,
                "join_leave": True,
                "force_push_join_leave": True,
                "history_size": 5,
                "history_ttl": "300s",
                "allow_recovery": True,
                "allow_positioning": True,
                "allow_user_limited_channels": True,
                "allow_tags_filter": True,
            },
            {
                "name": "tags",
                **NAMESPACE_DEFAULTS,
                "history_size": 10,
                "history_ttl": "300s",
                "allow_tags_filter": True,
            },
            {
                "name": "plain",
                "allow_subscribe_for_client": True,
                "allow_publish_for_client": True,
            },
            {"name": "locked"},
            {
                "name": "stream",
                **NAMESPACE_DEFAULTS,
                "history_size": 10,
                "history_ttl": "300s",
                "force_recovery": True,
                "force_positioning": True,
            },
            {
                "name": "cache",
                **NAMESPACE_DEFAULTS,
                "history_size": 1,
                "history_ttl": "300s",
                "force_recovery": True,
                "force_recovery_mode": "cache",
            },
            {
                "name": "delta",
                **NAMESPACE_DEFAULTS,
                "history_size": 10,
                "history_ttl": "300s",
                "force_recovery": True,
                "allowed_delta_types": ["fossil"],
            },
        ],
    },
}


@dataclass
class Pair:
    centrifugo: Target
    rotary: Target


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The config both servers of a module start from; a module may override this fixture."""
    return CONFIG


@pytest.fixture(scope="module")
def pairs(
    tmp_path_factory: pytest.TempPathFactory, config: dict[str, Any]
) -> Iterator[Callable[[str], Pair]]:
    """``pairs(key)``: Centrifugo and rotary from the same config file, on free ports of 127.0.0.1,
    started on first use of ``key`` and kept for the module, so that scenarios replayed with another
    protocol find fresh channels."""
    same = reference_config(config)
    started: dict[str, Pair] = {}
    with contextlib.ExitStack() as stack:

        def start(key: str) -> Pair:
            if key not in started:
                directory = tmp_path_factory.mktemp(f"differential-{key}")
                centrifugo = stack.enter_context(centrifugo_process(directory / "centrifugo", same))
                rotary = stack.enter_context(
                    rotary_process(directory / "rotary", same, "--http_server.address", "127.0.0.1")
                )
                started[key] = Pair(
                    Target("centrifugo", centrifugo.http_url), Target("rotary", rotary.http_url)
                )
            return started[key]

        yield start


@pytest.fixture(scope="module")
def pair(pairs: Callable[[str], Pair]) -> Pair:
    """The module's pair of servers for scenarios that run once."""
    return pairs("json")
