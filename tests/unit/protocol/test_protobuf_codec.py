"""The Protobuf codec: uvarint-delimited frames and their malformed variants."""

from __future__ import annotations

import pytest
from google.protobuf.internal.encoder import _VarintBytes
from hypothesis import given
from hypothesis import strategies as st

from rotary.protocol import pb
from rotary.protocol.codec import ProtocolError, ProtocolType, codec_for
from rotary.protocol.protobuf_codec import read_uvarint, uvarint

codec = codec_for(ProtocolType.PROTOBUF)


@given(st.integers(0, 2**64 - 1))
def test_uvarint_matches_protobuf_and_reads_back(value: int) -> None:
    encoded = uvarint(value)
    assert encoded == _VarintBytes(value)
    assert read_uvarint(b"\xff" + encoded + b"\x00", 1) == (value, 1 + len(encoded))


def test_empty_reply_is_one_zero_length_item() -> None:
    assert codec.encode_reply(pb.Reply()) == b"\x00"


def test_pong_is_one_zero_length_item() -> None:
    assert codec.decode_commands(b"\x00") == [pb.Command()]


def test_long_message_gets_a_multi_byte_prefix() -> None:
    command = pb.Command(id=1, publish=pb.PublishRequest(channel="c", data=b"x" * 300))
    frame = codec.encode(command)
    assert frame[:2] == uvarint(len(frame) - 2) and len(frame) - 2 > 127
    assert codec.decode_commands(frame + codec.encode(pb.Command(id=2))) == [command, pb.Command(id=2)]


def test_join_concatenates() -> None:
    assert codec.join([b"\x00", b"\x02\x08\x01"]) == b"\x00\x02\x08\x01"


def test_unknown_fields_are_skipped() -> None:
    [command] = codec.decode_commands(b"\x05\x08\x01\xa0\x06\x07")  # id=1, then field 100 = 7
    assert command.id == 1


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"", id="empty-frame"),
        pytest.param(b"\x80", id="truncated-varint"),
        pytest.param(b"\xff" * 11, id="overlong-varint"),
        pytest.param(b"\x05\x08\x01", id="length-beyond-frame"),
        pytest.param(b"\x02\x08\x01\x03", id="trailing-garbage"),
        pytest.param(b"\x03\xff\xff\xff", id="garbage-protobuf"),
        pytest.param(b"\x02\x22\x05", id="truncated-submessage"),
        pytest.param(b"\x05\x22\x03\x0a\x01\xff", id="invalid-utf8-string"),
        pytest.param(b"\x01\x0f", id="bad-wire-type"),
    ],
)
def test_malformed_input_raises_protocol_error(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        codec.decode_commands(frame)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_nothing_but_protocol_error(frame: bytes) -> None:
    try:
        codec.decode_commands(frame)
    except ProtocolError:
        pass
