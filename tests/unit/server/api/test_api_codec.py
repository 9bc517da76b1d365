"""JSON <-> API dataclasses: Go-style decoding (case-insensitive keys, null as zero, strict types and
ranges, raw JSON kept as bytes) and Centrifugo-style encoding (zero values omitted unless kept)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotary.server.api.codec import (
    MalformedRequest,
    UnencodableResult,
    _parse_exact,
    decode,
    decode_command,
    encode,
    parse_json,
)
from rotary.server.api.schema import (
    ApiError,
    BatchReply,
    BatchRequest,
    BoolValue,
    ClientInfo,
    Command,
    DisconnectRequest,
    HistoryRequest,
    NodeResult,
    Outcome,
    Publication,
    PublishRequest,
    PublishResult,
    StreamPosition,
    SubscribeOptionOverride,
    SubscribeRequest,
)


def dumps(value: Any) -> bytes:
    return orjson.dumps(encode(value))


def test_decode_fills_every_kind_of_field() -> None:
    request = decode(
        SubscribeRequest,
        {
            "channel": "c",
            "expire_at": -5,
            "info": {"a": [1, "x"]},
            "recover_since": {"offset": 3, "epoch": "e"},
            "override": {"presence": {"value": True}, "join_leave": None},
        },
    )
    assert request == SubscribeRequest(
        channel="c",
        expire_at=-5,
        info=b'{"a":[1,"x"]}',
        recover_since=StreamPosition(3, "e"),
        override=SubscribeOptionOverride(presence=BoolValue(True)),
    )


def test_decode_matches_keys_in_any_case_and_ignores_unknown_ones() -> None:
    assert decode(PublishRequest, {"CHANNEL": "c", "Skip_History": True, "extra": {}}) == PublishRequest(
        channel="c", skip_history=True
    )


def test_null_leaves_zero_values_but_raw_fields_keep_it() -> None:
    assert decode(PublishRequest, {"channel": None, "tags": None, "data": None}) == PublishRequest(
        data=b"null"
    )
    assert decode(DisconnectRequest, {"whitelist": ["a", None]}).whitelist == ["a", ""]


@pytest.mark.parametrize(
    ("cls", "value", "where"),
    [
        (PublishRequest, {"channel": 1}, "channel"),
        (PublishRequest, {"skip_history": 1}, "skip_history"),
        (PublishRequest, {"version": 1.0}, "version"),
        (PublishRequest, {"version": True}, "version"),
        (PublishRequest, {"version": 2**64}, "version"),
        (HistoryRequest, {"limit": 2**31}, "limit"),
        (HistoryRequest, {"since": {"offset": -1}}, "since.offset"),
        (HistoryRequest, {"since": []}, "since"),
        (PublishRequest, {"tags": {"a": 1}}, "tags.a"),
        (DisconnectRequest, {"whitelist": "a"}, "whitelist"),
        (DisconnectRequest, {"disconnect": {"code": -1}}, "disconnect.code"),
        (PublishRequest, [], "request"),
    ],
)
def test_decode_rejects_wrong_types(cls: type, value: Any, where: str) -> None:
    with pytest.raises(MalformedRequest, match=where.replace(".", r"\.")):
        decode(cls, value)


def test_batch_command_takes_the_first_method_in_table_order() -> None:
    command = decode_command({"info": {}, "publish": {"channel": "c"}}, "commands[0]")
    assert command == Command("publish", PublishRequest(channel="c"))
    assert decode_command({"unknown": {}}, "c") == Command()
    assert decode_command({"publish": None}, "c") == Command()
    assert decode_command(None, "c") is None
    with pytest.raises(MalformedRequest, match=r"commands\[0\]\.info"):
        decode(BatchRequest, {"commands": [{"publish": {}, "info": 5}]})


def test_encode_omits_zero_values() -> None:
    assert dumps(PublishResult()) == b"{}"
    assert dumps(PublishResult(offset=2, epoch="e")) == b'{"offset":2,"epoch":"e"}'
    assert dumps(Publication(data=b'{"x":1}')) == b'{"data":{"x":1}}'


def test_encode_keeps_marked_fields() -> None:
    assert dumps(ClientInfo()) == b'{"user":"","client":""}'
    assert dumps(NodeResult()) == (
        b'{"uid":"","name":"","version":"","num_clients":0,"num_users":0,"num_channels":0,"num_subs":0}'
    )


def test_encode_outcomes_and_batch_replies() -> None:
    assert dumps(Outcome(result=PublishResult())) == b'{"result":{}}'
    assert dumps(Outcome(error=ApiError(102))) == b'{"error":{"code":102,"message":"unknown channel"}}'
    assert dumps(BatchReply("history_remove", Outcome(result=PublishResult()))) == b'{"history_remove":{}}'
    assert (
        dumps(BatchReply("", Outcome(error=ApiError(104)))) == b'{"error":{"code":104,"message":"not found"}}'
    )


def test_encode_refuses_raw_bytes_that_are_not_json() -> None:
    with pytest.raises(UnencodableResult):
        encode(Publication(data=b"\xff"))


# --- parse_json: orjson where it reads a body as the exact parser does ------------------------------


def _same_parse(body: bytes) -> None:
    """parse_json gives what the exact parser gives: the same value (numbers of the same type and
    text), or the same refusal."""
    try:
        expected: Any = ("value", _parse_exact(body))
    except MalformedRequest as exc:
        expected = ("refused", str(exc))
    try:
        got: Any = ("value", parse_json(body))
    except MalformedRequest as exc:
        got = ("refused", str(exc))
    assert _typed(got) == _typed(expected)


def _typed(value: Any) -> Any:
    """``value`` with each number's type beside it (1 == 1.0 == True would hide a wrong parse), and
    the deep parser's fragments as their JSON (a Fragment equals only itself)."""
    if isinstance(value, orjson.Fragment):
        return ("Fragment", orjson.dumps(value))
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"channel":"c","data":{"t":1}}',
        b'{"channel":"c","data":-0}',
        b'{"channel":"c","data":[1.0, 1e5, 1E-2, -0.5]}',
        b'{"data":18446744073709551615}',
        b'{"data":18446744073709551616}',
        b'{"data":-9223372036854775808}',
        b'{"data":-9223372036854775809}',
        b'{"data":123456789012345678901234567890}',
        b'{"channel":"a.e-0","data":1}',
        b'{"channel":"\\ud800"}',
        b'\xef\xbb\xbf{"channel":"c"}',
        b'{"channel":"c","channel":"d","CHANNEL":"e"}',
        b'{"data":NaN}',
        b'{"data":Infinity}',
        b'{"data":[1,]}',
        b'{"data":"\x01"}',
        b'{"data":"\xff"}',
        b"",
        b" \t\r\n{} \n",
        b"\x0c{}",
        b"null",
        b"[" * 2000 + b"]" * 2000,
        b'{"data":' + b"[" * 1100 + b"1" + b"]" * 1100 + b"}",
    ],
)
def test_parse_json_reads_as_the_exact_parser(body: bytes) -> None:
    _same_parse(body)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@given(_json_values, st.sampled_from([(",", ":"), (", ", ": ")]))
def test_parse_json_reads_any_value_as_the_exact_parser(value: Any, separators: tuple[str, str]) -> None:
    _same_parse(json.dumps(value, separators=separators, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=40))
def test_parse_json_refuses_bytes_as_the_exact_parser(body: bytes) -> None:
    _same_parse(b'{"data":' + body + b"}")
