"""The framing of the emulated transports and the decoding of emulation requests (protocol/streaming.py)."""

from __future__ import annotations

import orjson
import pytest

from rotary.protocol import pb
from rotary.protocol.codec import ProtocolError, ProtocolType
from rotary.protocol.streaming import (
    decode_emulation_request,
    emulation_frame,
    http_chunk,
    http_stream_body,
    sse_event,
)


def test_a_chunk_is_its_hex_size_the_body_and_crlf() -> None:
    assert http_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"


def test_http_stream_ends_json_batches_with_a_newline_and_leaves_protobuf_as_encoded() -> None:
    assert http_stream_body(b'{"id":1}\n{"id":2}', ProtocolType.JSON) == b'{"id":1}\n{"id":2}\n'
    assert http_stream_body(b"\x02\x08\x01", ProtocolType.PROTOBUF) == b"\x02\x08\x01"


def test_an_sse_event_has_one_data_line_per_reply_of_the_batch() -> None:
    assert sse_event(b"{}") == b"data: {}\n\n"
    assert sse_event(b'{"id":1}\n{"id":2}') == b'data: {"id":1}\ndata: {"id":2}\n\n'


def test_json_emulation_requests_keep_the_data_value_as_json() -> None:
    body = orjson.dumps({"node": "n", "session": "s", "data": '{"id":2,"presence":{}}'})
    request = decode_emulation_request(body, protobuf=False)
    assert (request.node, request.session) == ("n", "s")
    assert emulation_frame(request.data, ProtocolType.JSON) == b'{"id":2,"presence":{}}'


def test_protobuf_emulation_requests_carry_raw_commands() -> None:
    body = pb.EmulationRequest(node="n", session="s", data=b"\x02\x08\x02").SerializeToString()
    request = decode_emulation_request(body, protobuf=True)
    assert (request.node, request.session, request.data) == ("n", "s", b"\x02\x08\x02")
    assert emulation_frame(request.data, ProtocolType.PROTOBUF) == b"\x02\x08\x02"


@pytest.mark.parametrize("body", [b"nonsense", b"[1]", b'{"node":5}', b'{"session":[]}', b"\xff"])
def test_unreadable_json_emulation_requests_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_emulation_request(body, protobuf=False)


def test_unreadable_protobuf_emulation_requests_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        decode_emulation_request(b"\x0a\x05", protobuf=True)


@pytest.mark.parametrize("data", [b"123", b"", b"{}", b'"\\ud800"'])
def test_data_a_json_client_cannot_mean_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        emulation_frame(data, ProtocolType.JSON)
