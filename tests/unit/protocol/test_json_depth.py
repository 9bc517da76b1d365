"""JSON of any depth: the fallback parser agrees with orjson where both read, keeps deep containers as
exact raw bytes, refuses what is not JSON, and the writer handles what orjson cannot."""

from __future__ import annotations

import orjson
import pytest

from rotary.protocol.json_depth import (
    KEPT_DEPTH,
    InvalidJson,
    JsonDepthError,
    dumps,
    loads,
    loads_sequence,
)


def deep(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


@pytest.mark.parametrize(
    "document",
    [b"1", b' {"a": [1, -2.5e3, "x\\u00e9", true, false, null, {}], "b": {"c": []}} ', b'"\\n"', b"[[[]]]"],
)
def test_fallback_agrees_with_orjson(document: bytes) -> None:
    """Next to a value past orjson's 1024 levels, the fallback parser reads the rest."""
    value = loads(b"[" + document + b"," + deep(2000) + b"]")
    assert value[0] == orjson.loads(document)
    assert loads_sequence(document) == [orjson.loads(document)]


def test_containers_below_the_kept_depth_stay_raw() -> None:
    value = loads(deep(2000))
    for _ in range(KEPT_DEPTH - 1):
        (value,) = value
    (fragment,) = value
    assert isinstance(fragment, orjson.Fragment)
    assert orjson.dumps(fragment) == deep(2000 - KEPT_DEPTH)


def test_deep_document_round_trips_exactly() -> None:
    document = deep(30000, b'{"a":[1,2]}')
    assert dumps(loads(document)) == document


def test_depth_bound() -> None:
    assert loads(deep(3000), max_depth=3000)
    with pytest.raises(JsonDepthError):
        loads(deep(3001), max_depth=3000)


@pytest.mark.parametrize(
    "inner",
    [b"1,", b"01", b'"\xff"', b"{1:2}", b'{"a" 1}', b"NaN", b"[", b'"\\x"', b"tru"],
)
def test_fallback_refuses_what_is_not_json(inner: bytes) -> None:
    with pytest.raises(InvalidJson):
        loads(deep(2000, inner))


def test_trailing_data_is_refused() -> None:
    with pytest.raises(InvalidJson):
        loads(deep(2000) + b" x")


def test_sequence_of_values() -> None:
    assert loads_sequence(b' {"a":1}\n[2] 3 ') == [{"a": 1}, [2], 3]


def test_writer_handles_what_orjson_cannot() -> None:
    assert dumps(orjson.loads(deep(500))) == deep(500)  # orjson writes 254 levels at most
    value = {"a": [1, {"b": 2**70}], "c": orjson.Fragment(b"[1]")}
    assert dumps(value) == b'{"a":[1,{"b":1180591620717411303424}],"c":[1]}'


def test_big_integers_stay_exact() -> None:
    assert loads(b"[123456789012345678901234567890," + deep(2000) + b"]")[0] == 123456789012345678901234567890
