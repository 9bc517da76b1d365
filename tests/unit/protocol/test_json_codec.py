"""The JSON codec: frame splitting, lenient decoding, strict types, raw payloads."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotary.protocol import pb
from rotary.protocol.codec import ProtocolError, ProtocolType, codec_for

codec = codec_for(ProtocolType.JSON)


# --- frames -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        b'{"id":1}\n{"id":2}',
        b'{"id":1}\n{"id":2}\n',
        b'{"id":1}\r\n{"id":2}\r\n',
        b'\n{"id":1}\n\n{"id":2}\n',
    ],
)
def test_frame_separators_are_tolerated(frame: bytes) -> None:
    assert codec.decode_commands(frame) == [pb.Command(id=1), pb.Command(id=2)]


@pytest.mark.parametrize("frame", [b"", b"\n", b"\r\n\n", b"  \n"])
def test_frame_without_message_is_rejected(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        codec.decode_commands(frame)


def test_join_uses_newlines() -> None:
    assert codec.join([b"{}", b'{"id":1}']) == b'{}\n{"id":1}'


# --- decoding ---------------------------------------------------------------------------------------


def test_lower_camel_keys_are_accepted() -> None:
    [command] = codec.decode_commands(b'{"id":1,"subscribe":{"channel":"c","joinLeave":true}}')
    assert command.subscribe.join_leave


def test_unknown_keys_and_nulls_are_ignored() -> None:
    frame = b'{"id":1,"method":7,"publish":{"channel":null,"data":null,"extra":{"x":[1]}}}'
    [command] = codec.decode_commands(frame)
    assert command.HasField("publish")
    assert command.publish == pb.PublishRequest()


def test_null_message_leaves_it_unset() -> None:
    [command] = codec.decode_commands(b'{"id":1,"connect":null}')
    assert not command.HasField("connect")


def test_empty_object_sets_an_empty_message() -> None:
    [command] = codec.decode_commands(b'{"id":1,"connect":{}}')
    assert command.HasField("connect")


@pytest.mark.parametrize("offset", [b"18446744073709551615", b'"18446744073709551615"', b'"7"'])
def test_64_bit_integers_as_numbers_or_numeric_strings(offset: bytes) -> None:
    [command] = codec.decode_commands(b'{"id":1,"subscribe":{"offset":%b}}' % offset)
    assert command.subscribe.offset == int(offset.strip(b'"'))


def test_negative_64_bit_string() -> None:
    [command] = codec.decode_commands(b'{"id":1,"connect":{"flag":"-5"}}')
    assert command.connect.flag == -5


def test_bytes_fields_hold_embedded_json() -> None:
    frame = b'{"id":1,"rpc":{"method":"m","data": {"b" : [1, 2.5, "x", null, true]}}}'
    [command] = codec.decode_commands(frame)
    assert command.rpc.data == b'{"b":[1,2.5,"x",null,true]}'


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=4))
def test_maps_decode(headers: dict[str, str]) -> None:
    frame = orjson.dumps({"id": 1, "connect": {"headers": headers}})
    assert dict(codec.decode_commands(frame)[0].connect.headers) == headers


def test_maps_of_messages_and_repeated_fields_decode() -> None:
    frame = b'{"id":1,"connect":{"subs":{"a":{"offset":3},"b":{}}}}'
    [command] = codec.decode_commands(frame)
    assert command.connect.subs["a"].offset == 3 and "b" in command.connect.subs
    [command] = codec.decode_commands(
        b'{"id":1,"sub_refresh":{"untrack":["x","y"],"track":[{"signature":"s"}]}}'
    )
    assert list(command.sub_refresh.untrack) == ["x", "y"]
    assert command.sub_refresh.track[0].signature == "s"


def test_replies_decode_too() -> None:
    [reply] = codec.decode(b'{"id":3,"presence":{"presence":{"c1":{"user":"u","conn_info":[1]}}}}', pb.Reply)
    assert reply.presence.presence["c1"].conn_info == b"[1]"


# --- malformed input: ProtocolError and nothing else ------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b'{"id":1,', id="invalid-json"),
        pytest.param(b'{"id":1}{"id":2}', id="two-objects-one-line"),
        pytest.param(b"[]", id="array-top-level"),
        pytest.param(b'"hello"', id="string-top-level"),
        pytest.param(b"null", id="null-top-level"),
        pytest.param(b'{"id":"1"}', id="string-for-uint32"),
        pytest.param(b'{"id":true}', id="bool-for-uint32"),
        pytest.param(b'{"id":1.0}', id="float-for-uint32"),
        pytest.param(b'{"id":-1}', id="negative-uint32"),
        pytest.param(b'{"id":4294967296}', id="uint32-overflow"),
        pytest.param(b'{"id":1,"subscribe":{"offset":-1}}', id="negative-uint64"),
        pytest.param(b'{"id":1,"subscribe":{"offset":18446744073709551616}}', id="uint64-overflow"),
        pytest.param(b'{"id":1,"subscribe":{"offset":"1e3"}}', id="non-numeric-string"),
        pytest.param(b'{"id":1,"subscribe":{"limit":"5"}}', id="string-for-int32"),
        pytest.param(b'{"id":1,"subscribe":{"channel":5}}', id="number-for-string"),
        pytest.param(b'{"id":1,"subscribe":{"recover":"true"}}', id="string-for-bool"),
        pytest.param(b'{"id":1,"subscribe":"chat"}', id="string-for-message"),
        pytest.param(b'{"id":1,"subscribe":{"tf":{"nodes":{}}}}', id="object-for-repeated"),
        pytest.param(b'{"id":1,"subscribe":{"tf":{"nodes":[1]}}}', id="number-in-repeated-message"),
        pytest.param(b'{"id":1,"sub_refresh":{"untrack":[1]}}', id="number-in-repeated-string"),
        pytest.param(b'{"id":1,"connect":{"headers":[]}}', id="array-for-map"),
        pytest.param(b'{"id":1,"connect":{"headers":{"a":1}}}', id="number-in-string-map"),
        pytest.param(b'{"id":1,"connect":{"subs":{"a":1}}}', id="number-in-message-map"),
        pytest.param(b'{"id":1,"rpc":{"data":1e400}}', id="infinite-number"),
        pytest.param(b'{"id":1,"rpc":{"data":"\xff"}}', id="invalid-utf8"),
        pytest.param(b'{"id":1,"rpc":{"method":"\\ud800"}}', id="lone-surrogate"),
        pytest.param(b'{"id":1}\n[1]', id="bad-second-line"),
    ],
)
def test_malformed_input_raises_protocol_error(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        codec.decode_commands(frame)


@pytest.mark.parametrize("depth", [300, 5000, 30000])
def test_payload_of_any_depth_is_kept(depth: int) -> None:
    """orjson reads 1024 levels and writes 254; Centrifugo keeps client payloads raw at any depth
    (checked against v6.9.1 up to 30000 levels, what fits its 64 KiB frame)."""
    data = b"[" * depth + b'{"a":1}' + b"]" * depth
    (command,) = codec.decode_commands(b'{"id":1,"rpc":{"data":%b}}' % data)
    assert command.rpc.data == data


def test_too_deep_nesting_raises_protocol_error() -> None:
    depth = 500  # orjson caps nesting at 1024 levels; the walk recurses twice per FilterNode level
    frame = b'{"id":1,"subscribe":{"tf":%b{}%b}}' % (b'{"nodes":[' * depth, b"]}" * depth)
    with pytest.raises(ProtocolError):
        codec.decode_commands(frame)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_nothing_but_protocol_error(frame: bytes) -> None:
    try:
        codec.decode_commands(frame)
    except ProtocolError:
        pass


# Real field names, so that the fuzzer reaches the typed setters rather than only unknown keys.
FIELD_NAMES = st.sampled_from(
    [
        "id",
        "connect",
        "subscribe",
        "channel",
        "offset",
        "data",
        "subs",
        "headers",
        "tf",
        "nodes",
        "limit",
        "recover",
        "since",
        "epoch",
        "track",
        "items",
        "version",
        "flag",
        "joinLeave",
        "sub_refresh",
    ]
)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES, inner, max_size=4),
    max_leaves=12,
)


@given(json_like)
def test_arbitrary_json_raises_nothing_but_protocol_error(value: object) -> None:
    try:
        frame = orjson.dumps(value)
    except orjson.JSONEncodeError:  # integers beyond 64 bits; NaN is written as null
        return
    try:
        codec.decode_commands(frame)
    except ProtocolError:
        pass


# --- encoding ---------------------------------------------------------------------------------------


def test_empty_reply_is_an_empty_object() -> None:
    assert codec.encode_reply(pb.Reply()) == b"{}"


def test_output_is_compact_in_field_number_order_without_zero_values() -> None:
    result = pb.ConnectResult(client="c", pong=True, ping=25, ttl=0, expires=False, version="")
    assert (
        codec.encode_reply(pb.Reply(id=1, connect=result))
        == b'{"id":1,"connect":{"client":"c","ping":25,"pong":true}}'
    )


def test_large_integers_are_json_numbers() -> None:
    reply = pb.Reply(push=pb.Push(pub=pb.Publication(offset=2**64 - 1, time=-(2**63), score=-1)))
    expected = b'{"push":{"pub":{"offset":18446744073709551615,"time":-9223372036854775808,"score":-1}}}'
    assert codec.encode_reply(reply) == expected


def test_raw_payload_is_spliced_without_newlines() -> None:
    pub = pb.Publication(data=b'{\n  "a": "b\\nc"\n}')
    assert codec.encode_push(pb.Push(pub=pub)) == b'{"pub":{"data":{  "a": "b\\nc"}}}'


def test_maps_are_written_in_key_order() -> None:
    pub = pb.Publication(tags={"b": "2", "a": "1", "c": "3"})
    assert codec.encode_push(pb.Push(pub=pub)) == b'{"pub":{"tags":{"a":"1","b":"2","c":"3"}}}'


def test_repeated_and_map_fields_encode() -> None:
    result = pb.ConnectResult(subs={"s": pb.SubscribeResult(publications=[pb.Publication(data=b"1")])})
    expected = b'{"id":2,"connect":{"subs":{"s":{"publications":[{"data":1}]}}}}'
    assert codec.encode_reply(pb.Reply(id=2, connect=result)) == expected
    refresh = pb.SubRefreshRequest(untrack=["a", "b"])
    assert (
        codec.encode(pb.Command(id=3, sub_refresh=refresh)) == b'{"id":3,"sub_refresh":{"untrack":["a","b"]}}'
    )


def test_payload_numbers_keep_their_spelling() -> None:
    """As Centrifugo keeps raw payloads as bytes: no float rounding, no big integer turned float."""
    data = b'{"a": 1e5, "b": 1.50, "c": 123456789012345678901234567890}'
    line = b'{"id":1,"publish":{"channel":"a","data":' + data + b"}}"
    (command,) = codec_for(ProtocolType.JSON).decode_commands(line)
    assert command.publish.data == b'{"a":1e5,"b":1.50,"c":123456789012345678901234567890}'
    (command,) = codec_for(ProtocolType.JSON).decode_commands(b'{"id":1,"rpc":{"data":2.50}}')
    assert command.rpc.data == b"2.50"


@pytest.mark.parametrize("data", [b"-0", b'{"x":-0}', b'[1,-0,{"y":[-0]}]', b'{"s":"a-0","n":-0}'])
def test_an_integer_minus_zero_keeps_its_sign(data: bytes) -> None:
    """The plain reading makes ``-0`` 0; with no float or token on the line, the exact one runs too."""
    line = b'{"id":1,"publish":{"channel":"a","data":' + data + b"}}"
    (command,) = codec_for(ProtocolType.JSON).decode_commands(line)
    assert command.publish.data == data.replace(b" ", b"")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"n":-0,"big":[1,[2,[3e0]]]}', b'{"n":-0,"big":[1,[2,[3e0]]]}'),
        (b'{"n":-0}', b'{"n":-0}'),  # read as 0 without a float: "-0" takes the exact reading too
        (b'{"n":[1,{"deep":-0}]}', b'{"n":[1,{"deep":-0}]}'),
        (b'{"n":[1,{"deep":10}], "s":"1.5"}', b'{"n":[1,{"deep":10}],"s":"1.5"}'),
        (b'[[[[{"x":12345678901234567890}]]]]', b'[[[[{"x":12345678901234567890}]]]]'),
    ],
)
def test_digits_in_strings_cost_no_second_reading_and_change_nothing(data: bytes, expected: bytes) -> None:
    """A JWT's ``9.eyJ`` matches the pattern that picks the exact reading; without a float in the
    value the plain reading gives the same numbers, so it stands."""
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc9.e1E5"
    line = b'{"id":1,"connect":{"token":"' + token.encode() + b'","data":' + data + b"}}"
    (command,) = codec_for(ProtocolType.JSON).decode_commands(line)
    assert command.connect.token == token
    assert command.connect.data == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            pb.Reply(id=1, history=pb.HistoryResult(epoch="e")),
            b'{"id":1,"history":{"publications":[],"epoch":"e","offset":0}}',
        ),
        (
            pb.Reply(id=1, presence_stats=pb.PresenceStatsResult()),
            b'{"id":1,"presence_stats":{"num_clients":0,"num_users":0}}',
        ),
        (pb.Reply(id=1, presence=pb.PresenceResult()), b'{"id":1,"presence":{"presence":{}}}'),
        (
            pb.Reply(id=1, presence=pb.PresenceResult(presence={"c": pb.ClientInfo(client="c")})),
            b'{"id":1,"presence":{"presence":{"c":{"user":"","client":"c"}}}}',
        ),
    ],
)
def test_fields_centrifugo_writes_even_at_zero(reply: pb.Reply, expected: bytes) -> None:
    """Centrifugo's JSON has no omitempty on these (tests/differential: history-empty)."""
    assert codec.encode_reply(reply) == expected
