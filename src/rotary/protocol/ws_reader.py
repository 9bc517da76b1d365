"""WebSocket frames from client to server, parsed into whole messages (RFC 6455, RFC 7692).

The server side of rotary's own WebSocket connection (transports/ws_connection.py) feeds the bytes
it reads here and gets back whole messages and control frames. Client frames must be masked;
fragments are joined, control frames may come between them; permessage-deflate is inflated per
message with no context taken over, which is what rotary negotiates
(``client_no_context_takeover``, see rotary.protocol.deflate). Two limits bound a message as in
Centrifugo's WebSocket handler: the bytes received (``message_size_limit``) and, for a compressed
one, the inflated bytes (``decompressed_message_size_limit``); either ends the connection with
1009 and no reason, as Centrifugo's reader does. Protocol violations end it with 1002, invalid
UTF-8 in a text message with 1007 (https://centrifugal.dev/docs/transports/websocket,
https://www.rfc-editor.org/rfc/rfc6455#section-5).
"""

from __future__ import annotations

import zlib
from typing import Final

from rotary.protocol.framing import OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT

OPCODE_CONTINUATION: Final = 0x0

CLOSE_NORMAL: Final = 1000
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_NO_STATUS: Final = 1005
"""Not sent on the wire: what a close frame without a payload means (RFC 6455 section 7.1.5)."""
CLOSE_INVALID_DATA: Final = 1007
CLOSE_MESSAGE_TOO_BIG: Final = 1009

_FIN: Final = 0x80
_RSV1: Final = 0x40
_RSV23: Final = 0x30
_MASKED: Final = 0x80
_MAX_CONTROL_PAYLOAD: Final = 125
_EMPTY_BLOCK_TAIL: Final = b"\x00\x00\xff\xff"
_RAW_DEFLATE: Final = -15


class FrameError(Exception):
    """The client broke the protocol or a limit: the connection ends with this close code."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason


class ReadLimits:
    """Limits shared by every connection of an endpoint (0: none)."""

    __slots__ = ("inflated", "wire")

    def __init__(self, wire: int, inflated: int) -> None:
        self.wire = wire
        """The bytes of a message as received (compressed or not), over all its fragments."""
        self.inflated = inflated
        """The bytes of a compressed message once inflated."""


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XORs ``payload`` with the 4-byte ``mask`` repeated (RFC 6455 section 5.3).

    One big-integer XOR does the whole payload in C, far faster than a Python loop over bytes.
    """
    size = len(payload)
    if size == 0:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def close_code_of(payload: bytes) -> int:
    """The status code of a valid close frame's payload (1005 when it has none)."""
    return int.from_bytes(payload[:2], "big") if payload else CLOSE_NO_STATUS


class MessageReader:
    """Turns the bytes of one connection into ``(opcode, payload)`` pairs.

    Data messages come out whole as ``(OPCODE_TEXT or OPCODE_BINARY, message)`` (inflated and, for
    text, checked to be UTF-8); control frames as ``(OPCODE_PING, OPCODE_PONG or OPCODE_CLOSE,
    payload)``, the close payload already checked. A violation raises :class:`FrameError`; the
    reader is then unusable. Only an incomplete frame and the fragments of an unfinished message
    are held between calls, both bounded by the wire limit.
    """

    __slots__ = ("_buffer", "_compressed", "_deflate", "_fragments", "_limits", "_opcode", "_received")

    def __init__(self, limits: ReadLimits, deflate: bool) -> None:
        self._limits = limits
        self._deflate = deflate
        """Whether permessage-deflate was negotiated (RSV1 allowed on a message's first frame)."""
        self._buffer = b""
        self._fragments: list[bytes] | None = None
        """Payloads so far of a fragmented message; None between messages."""
        self._opcode = 0
        self._compressed = False
        self._received = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages and control frames completed by ``data``, in order."""
        if self._buffer:
            data = self._buffer + data
        out: list[tuple[int, bytes]] = []
        end = len(data)
        pos = 0
        wire_limit = self._limits.wire
        while end - pos >= 2:
            first = data[pos]
            second = data[pos + 1]
            if not second & _MASKED:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
            size = second & 0x7F
            start = pos + 6
            if size == 126:
                if end - pos < 4:
                    break
                size = int.from_bytes(data[pos + 2 : pos + 4], "big")
                start = pos + 8
            elif size == 127:
                if end - pos < 10:
                    break
                size = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 14
            opcode = first & 0x0F
            if opcode >= 8:
                if size > _MAX_CONTROL_PAYLOAD:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "bad control frame")
            elif wire_limit and self._received + size > wire_limit:
                raise FrameError(CLOSE_MESSAGE_TOO_BIG)
            if end - start < size:
                break
            payload = unmask(data[start : start + size], data[start - 4 : start])
            pos = start + size
            self._frame(first, opcode, payload, out)
        self._buffer = data[pos:] if pos < end else b""
        return out

    def _frame(self, first: int, opcode: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        if first & _RSV23:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        fin = bool(first & _FIN)
        if opcode >= 8:
            self._control(fin, first, opcode, payload, out)
            return
        if opcode == OPCODE_CONTINUATION:
            if self._fragments is None:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "continuation without a message")
            if first & _RSV1:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "compression bit on a continuation")
            self._fragments.append(payload)
        elif opcode in (OPCODE_TEXT, OPCODE_BINARY):
            if self._fragments is not None:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "new message before the last one ended")
            if first & _RSV1 and not self._deflate:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "compression bit without the extension")
            self._opcode = opcode
            self._compressed = bool(first & _RSV1)
            if fin:
                out.append((opcode, self._message(payload)))
                return
            self._fragments = [payload]
        else:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "unknown opcode")
        self._received += len(payload)
        if fin:
            message = b"".join(self._fragments)
            self._fragments = None
            self._received = 0
            out.append((self._opcode, self._message(message)))

    def _control(
        self, fin: bool, first: int, opcode: int, payload: bytes, out: list[tuple[int, bytes]]
    ) -> None:
        if not fin or first & _RSV1:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "bad control frame")
        if opcode == OPCODE_CLOSE:
            _check_close(payload)
        elif opcode not in (OPCODE_PING, OPCODE_PONG):
            raise FrameError(CLOSE_PROTOCOL_ERROR, "unknown opcode")
        out.append((opcode, payload))

    def _message(self, payload: bytes) -> bytes:
        if self._compressed:
            payload = _inflate(payload, self._limits.inflated)
        if self._opcode == OPCODE_TEXT:
            try:
                payload.decode()
            except UnicodeDecodeError:
                raise FrameError(CLOSE_INVALID_DATA, "invalid UTF-8 in a text message") from None
        return payload


def _inflate(payload: bytes, limit: int) -> bytes:
    """A compressed message inflated, never past ``limit`` bytes (0: no limit)."""
    inflater = zlib.decompressobj(_RAW_DEFLATE)
    try:
        message = inflater.decompress(payload + _EMPTY_BLOCK_TAIL, limit + 1 if limit else 0)
    except zlib.error:
        raise FrameError(CLOSE_INVALID_DATA, "bad compressed data") from None
    if limit and len(message) > limit:
        raise FrameError(CLOSE_MESSAGE_TOO_BIG)
    return message


def _check_close(payload: bytes) -> None:
    """RFC 6455 section 7.4: a close payload is empty or a valid code and a UTF-8 reason."""
    if not payload:
        return
    if len(payload) == 1:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "bad close frame")
    code = close_code_of(payload)
    if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        raise FrameError(CLOSE_PROTOCOL_ERROR, "bad close code")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, "invalid UTF-8 in a close reason") from None
