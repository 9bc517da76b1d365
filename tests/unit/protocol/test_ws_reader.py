"""The client frame reader of rotary's own WebSocket connection (RFC 6455, RFC 7692), fed bytes as a
client would send them: masked, fragmented, split anywhere, compressed."""

from __future__ import annotations

import os
import zlib

import pytest

from rotary.protocol.framing import OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT
from rotary.protocol.ws_reader import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_PROTOCOL_ERROR,
    FrameError,
    MessageReader,
    ReadLimits,
    UnreadableMessage,
    unmask,
)

LIMITS = ReadLimits(wire=1000, inflated=10_000)


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: bool = True
) -> bytes:
    """A frame as a client sends it; the mask is random, as RFC 6455 requires of clients."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, size | (0x80 if mask else 0)])
    elif size < 1 << 16:
        head = bytes([first, 126 | (0x80 if mask else 0)]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, 127 | (0x80 if mask else 0)]) + size.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def deflated(message: bytes) -> bytes:
    stream = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = stream.compress(message) + stream.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def test_unmask_is_its_own_inverse_and_matches_the_bytewise_xor() -> None:
    payload, key = os.urandom(1001), os.urandom(4)
    masked = unmask(payload, key)
    assert masked == bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    assert unmask(masked, key) == payload
    assert unmask(b"", key) == b""


@pytest.mark.parametrize("size", [0, 1, 125, 126, 999, 1000])
def test_a_message_of_each_length_encoding_split_at_every_byte(size: int) -> None:
    """Lengths on 7 and 16 bits; the stream cut into one-byte reads gives the same message."""
    message = bytes(i % 251 for i in range(size))
    wire = client_frame(OPCODE_BINARY, message)
    reader = MessageReader(ReadLimits(0, 0), deflate=False)
    got = []
    for i in range(len(wire)):
        got += reader.feed(wire[i : i + 1])
    assert got == [(OPCODE_BINARY, message)]


def test_a_64_bit_length_and_several_frames_in_one_read() -> None:
    big = b"x" * 70_000
    reader = MessageReader(ReadLimits(0, 0), deflate=False)
    wire = client_frame(OPCODE_TEXT, big) + client_frame(OPCODE_TEXT, b"{}")
    assert reader.feed(wire) == [(OPCODE_TEXT, big), (OPCODE_TEXT, b"{}")]


def test_fragments_are_joined_with_control_frames_between_them() -> None:
    reader = MessageReader(LIMITS, deflate=False)
    wire = (
        client_frame(OPCODE_TEXT, b'{"id":', fin=False)
        + client_frame(OPCODE_PING, b"p")
        + client_frame(0, b"1,", fin=False)
        + client_frame(OPCODE_PONG, b"")
        + client_frame(0, b'"connect":{}}')
    )
    assert reader.feed(wire) == [
        (OPCODE_PING, b"p"),
        (OPCODE_PONG, b""),
        (OPCODE_TEXT, b'{"id":1,"connect":{}}'),
    ]


def close_frame(code: int) -> bytes:
    return client_frame(OPCODE_CLOSE, code.to_bytes(2, "big"))


def stopped_by(reader: MessageReader, wire: bytes) -> FrameError:
    """What stopped ``reader`` at ``wire``; it reads nothing after that."""
    reader.feed(wire)
    error = reader.error
    assert error is not None
    assert reader.feed(client_frame(OPCODE_TEXT, b"{}")) == []
    return error


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        pytest.param(client_frame(OPCODE_TEXT, b"{}", mask=False), "bad MASK", id="unmasked"),
        pytest.param(client_frame(0, b"x"), "continuation after FIN", id="continuation-first"),
        pytest.param(
            client_frame(OPCODE_TEXT, b"a", fin=False) + client_frame(OPCODE_TEXT, b"b"),
            "data before FIN",
            id="interleaved",
        ),
        pytest.param(
            client_frame(OPCODE_PING, b"", fin=False), "FIN not set on control", id="fragmented-control"
        ),
        pytest.param(client_frame(OPCODE_PING, b"x" * 126), "len > 125 for control", id="long-control"),
        pytest.param(client_frame(OPCODE_TEXT, b"{}", rsv1=True), "RSV1 set", id="rsv1-not-negotiated"),
        pytest.param(bytes([0x80 | 0x20 | 1, 0x80]) + b"\0\0\0\0", "RSV2 set", id="rsv2"),
        pytest.param(bytes([0x80 | 0x10 | 1, 0x80]) + b"\0\0\0\0", "RSV3 set", id="rsv3"),
        pytest.param(bytes([0x80 | 0x20 | 1, 0]), "RSV2 set, bad MASK", id="two-at-once"),
        pytest.param(
            bytes([0x40 | 0x20 | OPCODE_PING, 126]),
            "RSV1 set, RSV2 set, len > 125 for control, FIN not set on control, bad MASK",
            id="all-of-a-control-header",
        ),
        pytest.param(client_frame(0x3, b""), "bad opcode 3", id="reserved-opcode"),
        pytest.param(
            client_frame(OPCODE_CLOSE, (1005).to_bytes(2, "big")), "bad close code 1005", id="close-1005"
        ),
        pytest.param(
            client_frame(OPCODE_CLOSE, (1014).to_bytes(2, "big")), "bad close code 1014", id="close-1014"
        ),
        pytest.param(
            client_frame(OPCODE_CLOSE, (999).to_bytes(2, "big")), "bad close code 999", id="close-999"
        ),
        pytest.param(
            client_frame(OPCODE_CLOSE, (1000).to_bytes(2, "big") + b"\xff\xfe"),
            "invalid utf8 payload in close frame",
            id="close-reason-not-utf8",
        ),
    ],
)
def test_protocol_violations_end_with_1002_and_the_go_readers_words(wire: bytes, reason: str) -> None:
    error = stopped_by(MessageReader(LIMITS, deflate=False), wire)
    assert (error.code, error.reason) == (CLOSE_PROTOCOL_ERROR, reason)


def test_a_long_control_frame_is_refused_from_its_header() -> None:
    """The header alone is enough: a 2**40-byte ping is not waited for."""
    header = bytes([0x80 | OPCODE_PING, 0x80 | 127]) + (1 << 40).to_bytes(8, "big")
    assert stopped_by(MessageReader(LIMITS, deflate=False), header).code == CLOSE_PROTOCOL_ERROR


def test_what_came_before_a_violation_comes_out_first() -> None:
    reader = MessageReader(LIMITS, deflate=False)
    wire = client_frame(OPCODE_TEXT, b"1") + client_frame(OPCODE_PING, b"p") + client_frame(0x3, b"")
    assert reader.feed(wire) == [(OPCODE_TEXT, b"1"), (OPCODE_PING, b"p")]
    assert reader.error is not None and reader.error.reason == "bad opcode 3"


def test_text_is_not_checked_for_utf8() -> None:
    """Go's reader hands text messages on as bytes; the command decoder judges them."""
    bad = b"\xff\xfe"
    for opcode in (OPCODE_TEXT, OPCODE_BINARY):
        assert MessageReader(LIMITS, False).feed(client_frame(opcode, bad)) == [(opcode, bad)]


def test_a_close_frame_of_one_byte_has_no_code() -> None:
    reader = MessageReader(LIMITS, False)
    assert reader.feed(client_frame(OPCODE_CLOSE, b"\x03")) == [(OPCODE_CLOSE, b"\x03")]
    assert reader.error is None


def test_rsv1_on_a_continuation_or_control_frame_is_ignored_once_deflate_was_negotiated() -> None:
    reader = MessageReader(LIMITS, deflate=True)
    wire = (
        client_frame(OPCODE_TEXT, b'{"a":', fin=False)
        + client_frame(OPCODE_PING, b"p", rsv1=True)
        + client_frame(0, b"1}", rsv1=True)
    )
    assert reader.feed(wire) == [(OPCODE_PING, b"p"), (OPCODE_TEXT, b'{"a":1}')]
    assert reader.error is None


def test_a_valid_close_frame_comes_out_as_is() -> None:
    payload = (4000).to_bytes(2, "big") + "bye ü".encode()
    reader = MessageReader(LIMITS, False)
    assert reader.feed(client_frame(OPCODE_CLOSE, payload)) == [(OPCODE_CLOSE, payload)]
    assert MessageReader(LIMITS, False).feed(client_frame(OPCODE_CLOSE, b"")) == [(OPCODE_CLOSE, b"")]


def test_the_wire_limit_counts_every_fragment_and_is_checked_from_the_header() -> None:
    reader = MessageReader(LIMITS, deflate=False)
    assert reader.feed(client_frame(OPCODE_TEXT, b"a" * 1000)) == [(OPCODE_TEXT, b"a" * 1000)]
    wire = client_frame(OPCODE_TEXT, b"a" * 600, fin=False) + client_frame(0, b"a" * 401)[:4]
    error = stopped_by(reader, wire)
    assert (error.code, error.reason) == (CLOSE_MESSAGE_TOO_BIG, "")


def test_compressed_messages_are_inflated_whole_and_fragmented() -> None:
    message = b'{"id":1,"connect":{"data":"' + b"z" * 3000 + b'"}}'
    payload = deflated(message)
    reader = MessageReader(LIMITS, deflate=True)
    assert reader.feed(client_frame(OPCODE_TEXT, payload, rsv1=True)) == [(OPCODE_TEXT, message)]
    half = len(payload) // 2
    wire = client_frame(OPCODE_TEXT, payload[:half], fin=False, rsv1=True) + client_frame(0, payload[half:])
    assert reader.feed(wire) == [(OPCODE_TEXT, message)]
    assert reader.feed(client_frame(OPCODE_TEXT, b"{}")) == [(OPCODE_TEXT, b"{}")]  # RSV1 clear: as is


def test_a_compressed_message_past_the_inflated_limit_is_1009() -> None:
    bomb = deflated(b"\0" * 10_001)
    assert len(bomb) < LIMITS.wire
    error = stopped_by(MessageReader(LIMITS, deflate=True), client_frame(OPCODE_BINARY, bomb, rsv1=True))
    assert (error.code, error.reason) == (CLOSE_MESSAGE_TOO_BIG, "message too big after decompression")


def test_compressed_garbage_is_an_unreadable_message() -> None:
    """Not a framing error: the connection answers it as a bad request (3501)."""
    wire = client_frame(OPCODE_BINARY, b"\xff\xff\xff", rsv1=True)
    error = stopped_by(MessageReader(LIMITS, deflate=True), wire)
    assert isinstance(error, UnreadableMessage) and (error.code, error.reason) == (3501, "bad request")
