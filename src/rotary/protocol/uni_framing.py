"""Framing of unidirectional streams: SSE events, newline-delimited JSON, HTTP/1.1 chunks, and the
bare Protobuf messages of GRPC.

The HTTP and WebSocket unidirectional transports speak JSON only, and rotary's JSON messages never
hold a raw newline (json_mapping.raw_json drops them), so a batch the session joined with newlines
splits back into its messages exactly. Each function is pure and returns the bytes for the socket,
so one prepared frame serves every subscriber with the same framing. See
https://centrifugal.dev/docs/transports/uni_sse and https://centrifugal.dev/docs/transports/uni_http_stream.
"""

from __future__ import annotations

from typing import Final

from rotary.protocol.protobuf_codec import read_uvarint

SSE_PREAMBLE: Final = b"\r\n"
"""What Centrifugo writes (and flushes) right after the SSE response headers."""


def messages_of(batch: bytes) -> list[bytes]:
    """The JSON messages of a newline-joined batch."""
    return batch.split(b"\n")


def sse_events(batch: bytes) -> bytes:
    """One `data:` event per message, as EventSource needs one JSON document per event."""
    return b"".join(b"data: " + message + b"\n\n" for message in messages_of(batch))


def json_lines(batch: bytes) -> bytes:
    """Newline-delimited JSON: every message, the last one included, ends with a newline."""
    return batch + b"\n"


def http_chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (RFC 9112 section 7.1); empty data would end the body, so it is refused."""
    if not data:
        raise ValueError("an empty chunk ends a chunked body")
    return b"%x\r\n%b\r\n" % (len(data), data)


def undelimited(batch: bytes) -> list[bytes]:
    """The Protobuf messages of a length-delimited batch, without their prefixes: GRPC frames each
    message itself (uni_grpc streams one Push per GRPC message)."""
    messages: list[bytes] = []
    pos = 0
    while pos < len(batch):
        size, pos = read_uvarint(batch, pos)
        messages.append(batch[pos : pos + size])
        pos += size
    return messages
