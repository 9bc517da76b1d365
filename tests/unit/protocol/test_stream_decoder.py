"""Commands cut out of a frameless stream (WebTransport): whole commands only, in order, and a
command past the size limit refused before it is buffered whole."""

from __future__ import annotations

import pytest

from rotary.protocol.codec import ProtocolError, ProtocolType
from rotary.protocol.protobuf_codec import delimited
from rotary.protocol.stream_decoder import MessageTooLarge, StreamDecoder


def test_json_commands_split_anywhere_come_out_whole() -> None:
    decoder = StreamDecoder(ProtocolType.JSON, 100)
    stream = b'{"id":1}\n{"id":2}\n{"id":3}\n'
    out = b"".join(decoder.feed(stream[i : i + 3]) for i in range(0, len(stream), 3))
    assert out.split(b"\n") == [b'{"id":1}', b'{"id":2}', b'{"id":3}', b""]


def test_json_last_command_without_newline_counts_at_the_end() -> None:
    decoder = StreamDecoder(ProtocolType.JSON, 100)
    assert decoder.feed(b'{"id":1}\n{"id":2}') == b'{"id":1}\n'
    assert decoder.finish() == b'{"id":2}'


def test_json_line_over_the_limit_is_refused_complete_or_not() -> None:
    with pytest.raises(MessageTooLarge):
        StreamDecoder(ProtocolType.JSON, 10).feed(b"x" * 11 + b"\n")
    decoder = StreamDecoder(ProtocolType.JSON, 10)
    decoder.feed(b"x" * 6)
    with pytest.raises(MessageTooLarge):
        decoder.feed(b"x" * 6)  # no newline yet, already too long
    assert StreamDecoder(ProtocolType.JSON, 10).feed(b"x" * 10 + b"\n") == b"x" * 10 + b"\n"


def test_protobuf_messages_split_inside_the_length_prefix() -> None:
    decoder = StreamDecoder(ProtocolType.PROTOBUF, 1000)
    stream = delimited(b"a" * 300) + delimited(b"b")
    out = b"".join(decoder.feed(stream[i : i + 1]) for i in range(len(stream)))
    assert out == stream
    assert decoder.finish() == b""


def test_protobuf_length_over_the_limit_is_refused_from_the_prefix() -> None:
    with pytest.raises(MessageTooLarge):
        StreamDecoder(ProtocolType.PROTOBUF, 100).feed(delimited(b"x" * 101)[:3])


def test_protobuf_cut_message_or_overlong_prefix_is_a_protocol_error() -> None:
    decoder = StreamDecoder(ProtocolType.PROTOBUF, 100)
    decoder.feed(delimited(b"x" * 10)[:5])
    with pytest.raises(ProtocolError):
        decoder.finish()
    with pytest.raises(ProtocolError):
        StreamDecoder(ProtocolType.PROTOBUF, 100).feed(b"\xff" * 11)
