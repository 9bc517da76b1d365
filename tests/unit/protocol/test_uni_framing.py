"""The pure framing of unidirectional HTTP streams (rotary.protocol.uni_framing)."""

from __future__ import annotations

import pytest

from rotary.protocol.uni_framing import SSE_PREAMBLE, http_chunk, json_lines, messages_of, sse_events


def test_sse_event_per_message_of_a_batch() -> None:
    assert sse_events(b'{"connect":{}}') == b'data: {"connect":{}}\n\n'
    assert sse_events(b'{"a":1}\n{}') == b'data: {"a":1}\n\ndata: {}\n\n'
    assert SSE_PREAMBLE == b"\r\n"


def test_json_lines_end_every_message_with_newline() -> None:
    assert json_lines(b'{"a":1}') == b'{"a":1}\n'
    assert json_lines(b'{"a":1}\n{}') == b'{"a":1}\n{}\n'
    assert messages_of(b'{"a":1}\n{}') == [b'{"a":1}', b"{}"]


def test_http_chunk() -> None:
    assert http_chunk(b"hello") == b"5\r\nhello\r\n"
    assert http_chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    with pytest.raises(ValueError):
        http_chunk(b"")
