"""permessage-deflate without context takeover: compressed messages decode with a standard inflater,
each on its own, and the offer is recognised by the extension name alone, as in Centrifugo."""

from __future__ import annotations

import zlib

import pytest

from rotary.protocol.deflate import DEFAULT_LEVEL, MessageDeflater, offered
from rotary.protocol.framing import ws_compressed_frame

TAIL = b"\x00\x00\xff\xff"  # what the receiver appends back (RFC 7692 section 7.2.2)


def inflate_alone(deflated: bytes) -> bytes:
    """A fresh raw inflater, as a peer without context takeover uses for each message."""
    return zlib.decompressobj(-15).decompress(deflated + TAIL)


@pytest.mark.parametrize("level", [-2, -1, 0, 1, 5, 9])
def test_each_message_inflates_alone_to_the_original(level: int) -> None:
    deflater = MessageDeflater(level)
    messages = [b'{"push":{"channel":"news","pub":{"data":"' + b"x" * n + b'"}}}' for n in (0, 10, 5000)]
    messages += [b"", bytes(range(256)) * 40]
    for message in messages * 2:  # the same message again still owes nothing to the one before
        assert inflate_alone(deflater.deflate(message)) == message


def test_output_is_that_of_a_fresh_compressor() -> None:
    shared = MessageDeflater(6)
    message = b"hello world " * 200
    shared.deflate(b"hello world, something else " * 50)
    assert shared.deflate(message) == MessageDeflater(6).deflate(message)
    assert len(shared.deflate(message)) < len(message) // 10


def test_compressed_frame_sets_rsv1_and_keeps_the_opcode() -> None:
    payload = MessageDeflater().deflate(b"a" * 300)
    text, binary = ws_compressed_frame(payload, False), ws_compressed_frame(payload, True)
    assert text[0] == 0x80 | 0x40 | 0x1 and binary[0] == 0x80 | 0x40 | 0x2
    assert inflate_alone(text[2:]) == b"a" * 300


def test_min_size_compresses_only_longer_messages() -> None:
    assert MessageDeflater(min_size=0).compresses(0)
    assert not MessageDeflater(min_size=100).compresses(100)
    assert MessageDeflater(min_size=100).compresses(101)


def test_an_out_of_range_level_falls_back_to_the_default() -> None:
    assert MessageDeflater(10).level == DEFAULT_LEVEL
    assert MessageDeflater(-3).level == DEFAULT_LEVEL
    assert MessageDeflater(10).framing_suffix == MessageDeflater(1).framing_suffix


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["permessage-deflate"], True),
        (["permessage-deflate; client_max_window_bits"], True),
        (["x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10"], True),
        (["foo", "permessage-deflate;client_no_context_takeover"], True),
        (["x-webkit-deflate-frame"], False),
        ([], False),
        (["permessage-deflate-x"], False),
    ],
)
def test_offer(headers: list[str], expected: bool) -> None:
    assert offered(headers) is expected
