"""WebSocket frames from server to client, built once and written to many sockets.

Server frames are never masked (RFC 6455 section 5.1), so a frame is a two- to ten-byte header in
front of the payload; building it here lets one prepared publication frame serve every subscriber.
All frames are final (FIN set): rotary never fragments. See
https://centrifugal.dev/docs/transports/websocket and https://www.rfc-editor.org/rfc/rfc6455#section-5.2.
"""

from __future__ import annotations

import struct
from typing import Final

_FIN: Final = 0x80
_RSV1: Final = 0x40  # "per-message compressed" under permessage-deflate (RFC 7692 section 6)
OPCODE_TEXT: Final = 0x1
OPCODE_BINARY: Final = 0x2
OPCODE_CLOSE: Final = 0x8
OPCODE_PING: Final = 0x9
OPCODE_PONG: Final = 0xA

_MAX_CONTROL_PAYLOAD: Final = 125  # RFC 6455 section 5.5
_MAX_CLOSE_REASON: Final = _MAX_CONTROL_PAYLOAD - 2  # the close code takes two bytes


def ws_frame(payload: bytes, binary: bool) -> bytes:
    """A text (JSON) or binary (Protobuf) data frame."""
    return _frame(OPCODE_BINARY if binary else OPCODE_TEXT, payload)


def ws_compressed_frame(deflated: bytes, binary: bool) -> bytes:
    """A data frame whose payload was compressed by :class:`rotary.protocol.deflate.MessageDeflater`."""
    return _frame(_RSV1 | (OPCODE_BINARY if binary else OPCODE_TEXT), deflated)


def ws_close_frame(code: int, reason: str) -> bytes:
    """A close frame; the reason is cut to 123 bytes without splitting a UTF-8 sequence."""
    encoded = reason.encode()
    if len(encoded) > _MAX_CLOSE_REASON:
        encoded = encoded[:_MAX_CLOSE_REASON].decode(errors="ignore").encode()
    return _frame(OPCODE_CLOSE, struct.pack("!H", code) + encoded)


def ws_ping_frame() -> bytes:
    """A ping with an empty payload, for ``cf_ws_frame_ping_pong`` and unidirectional WebSocket."""
    return _frame(OPCODE_PING, b"")


def ws_pong_frame(payload: bytes) -> bytes:
    """The answer to a client's ping, echoing its payload as RFC 6455 section 5.5.3 requires."""
    if len(payload) > _MAX_CONTROL_PAYLOAD:
        raise ValueError("a control frame payload is at most 125 bytes")
    return _frame(OPCODE_PONG, payload)


def ws_frame_payload(frame: bytes) -> bytes:
    """The payload of a frame :func:`ws_frame` built: its bytes after the header (a copy)."""
    size = frame[1] & 0x7F
    return frame[2 if size < 126 else 4 if size == 126 else 10 :]


def _frame(opcode: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN | opcode, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, 127, size)
    return header + payload
