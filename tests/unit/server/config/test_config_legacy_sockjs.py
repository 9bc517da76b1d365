"""A Centrifugo v5 config's SockJS keys (``sockjs: true``, ``sockjs_url``, ``sockjs_heartbeat_delay``)
keep SockJS on after the move, read as rotary's ``sockjs`` section with a warning each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rotary.server.config import ConfigError
from rotary.server.config.load import load_config


def load(tmp_path: Path, tree: dict[str, Any]) -> Any:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tree))
    return load_config(str(path), {})


def test_the_v5_boolean_turns_sockjs_on_with_defaults(tmp_path: Path) -> None:
    result = load(tmp_path, {"sockjs": True})
    assert result.config.sockjs.enabled
    assert result.config.sockjs.handler_prefix == "/connection/sockjs"
    assert result.warnings == ["sockjs: true is the Centrifugo v5 form; read as sockjs.enabled: true"]
    assert not result.unknown_keys


def test_false_keeps_it_off(tmp_path: Path) -> None:
    assert not load(tmp_path, {"sockjs": False}).config.sockjs.enabled


def test_the_flat_v5_keys_become_section_keys(tmp_path: Path) -> None:
    tree = {"sockjs": True, "sockjs_url": "https://example.com/sockjs.js", "sockjs_heartbeat_delay": "10s"}
    result = load(tmp_path, tree)
    assert (result.config.sockjs.url, result.config.sockjs.heartbeat_delay) == (
        "https://example.com/sockjs.js",
        10.0,
    )
    assert (
        "sockjs_heartbeat_delay is the Centrifugo v5 form; read as sockjs.heartbeat_delay" in result.warnings
    )
    assert not result.unknown_keys


def test_a_flat_key_beside_its_section_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"sockjs": {"enabled": True, "url": "a"}, "sockjs_url": "b"})
    assert caught.value.problems == [
        "sockjs_url (the Centrifugo v5 form of sockjs.url) and sockjs.url are both set"
    ]


def test_the_rotary_section_is_read_as_before(tmp_path: Path) -> None:
    result = load(tmp_path, {"sockjs": {"enabled": True, "heartbeat_delay": "5s"}})
    assert result.config.sockjs.heartbeat_delay == 5.0
    assert result.warnings == []


def test_a_value_of_another_type_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"sockjs": "yes"})
    assert caught.value.problems == ["sockjs: must be an object, got str"]
