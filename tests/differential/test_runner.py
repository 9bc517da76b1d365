"""The differential runner's own rules, without servers: normalization keeps what must be equal,
and the allowlist accepts a listed difference only exactly as listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from differential import runner
from differential.runner import Cmd, assert_same, connect, decode_frame, encode_command, normalize

ENTRY = """
[[difference]]
scenario = "s"
step = 0
reason = "a reason"
centrifugo = '{"a": 1}'
rotary = '{"a": 2}'
"""


@pytest.fixture
def allowlist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "allowlist.toml"
    path.write_text(ENTRY)
    monkeypatch.setattr(runner, "ALLOWLIST", path)


def test_listed_difference_passes(allowlist: None) -> None:
    assert_same("s", {0: {"a": 1}}, {0: {"a": 2}})


def test_other_difference_at_a_listed_step_fails(allowlist: None) -> None:
    with pytest.raises(AssertionError, match="differs from its allowlist entry"):
        assert_same("s", {0: {"a": 1}}, {0: {"a": 3}})


def test_entry_that_no_longer_differs_fails(allowlist: None) -> None:
    with pytest.raises(AssertionError, match="differs from its allowlist entry"):
        assert_same("s", {0: {"a": 1}}, {0: {"a": 1}})


def test_difference_at_another_step_fails_and_offers_an_entry(allowlist: None) -> None:
    with pytest.raises(AssertionError, match=r"\[\[difference\]\]"):
        assert_same("s", {0: {"a": 1}, 1: "x"}, {0: {"a": 2}, 1: "y"})


def test_normalize_masks_only_values_that_must_differ() -> None:
    ids = {"c-1": "<client:a>"}
    record = {"connect": {"client": "c-1", "version": "6", "ttl": 5, "ping": 25}, "presence": {"c-1": {}}}
    assert normalize(record, ids) == {
        "connect": {"client": "<client:a>", "version": "<version>", "ttl": "<ttl>", "ping": 25},
        "presence": {"<client:a>": {}},
    }
    assert normalize({"epoch": ""}, {}) == {"epoch": ""}


def test_info_nodes_compare_neither_metrics_nor_uptime() -> None:
    seen = {"nodes": [{"name": "n", "metrics": {"interval": 60}, "uptime": 3, "num_clients": 1}]}
    assert normalize(seen, {}) == {"nodes": [{"name": "<masked>", "num_clients": 1}]}


def test_protobuf_commands_round_trip_through_the_json_form() -> None:
    command: Cmd = connect("u", data={"x": 1})
    frame = encode_command("protobuf", {"id": 1, **command.body})
    assert isinstance(frame, bytes)
    assert decode_frame("json", encode_command("json", {"id": 1, "rpc": {"data": [1]}})) == [
        {"id": 1, "rpc": {"data": [1]}}
    ]
