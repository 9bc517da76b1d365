"""WebSocket frames from client to server, parsed into whole messages (RFC 6455, RFC 7692).

The server side of rotary's own WebSocket connections (transports/ws_protocol.py, for both
/connection/websocket and /connection/uni_websocket) feeds the bytes it reads here and gets back
whole messages and control frames. Client frames must be masked;
fragments are joined, control frames may come between them; permessage-deflate is inflated per
message with no context taken over, which is what rotary negotiates
(``client_no_context_takeover``, see rotary.protocol.deflate).

What a client sees when it breaks the rules is what Centrifugo's WebSocket reader (a fork of
Go's gorilla/websocket in centrifuge) answers, compared frame by frame in
tests/differential/test_websocket_frames.py: a frame header that breaks RFC 6455 ends the
connection with 1002 and the reader's list of what is wrong ("RSV2 set, bad MASK"), checked as soon
as the header's two bytes arrive; a close frame with an invalid code or a reason that is not UTF-8
gets 1002 too. Two limits bound a message: the bytes received (``message_size_limit``, 1009 and no
reason) and, for a compressed one, the inflated bytes (``decompressed_message_size_limit``, 1009
"message too big after decompression"). Text messages are not checked for UTF-8 and RSV1 is only
read on a message's first frame, as in Go; a message whose compressed bytes do not inflate is
unreadable, which Centrifugo's command decoder answers with 3501 (:class:`UnreadableMessage`).
See https://centrifugal.dev/docs/transports/websocket and
https://www.rfc-editor.org/rfc/rfc6455#section-5.
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
CLOSE_MESSAGE_TOO_BIG: Final = 1009
VALID_PEER_CLOSE_CODES: Final = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))
"""The codes below 3000 a peer may send in its close frame, as Go's reader accepts them (3000 to
4999 are the applications')."""

_FIN: Final = 0x80
_RSV1: Final = 0x40
_RSV2: Final = 0x20
_RSV3: Final = 0x10
_MASKED: Final = 0x80
_MAX_CONTROL_PAYLOAD: Final = 125
_EMPTY_BLOCK_TAIL: Final = b"\x00\x00\xff\xff"
_RAW_DEFLATE: Final = -15
_WHOLE_MESSAGES: Final = frozenset((_FIN | OPCODE_TEXT, _FIN | OPCODE_BINARY))
_WHOLE_COMPRESSED_MESSAGES: Final = _WHOLE_MESSAGES | {
    _FIN | _RSV1 | OPCODE_TEXT,
    _FIN | _RSV1 | OPCODE_BINARY,
}


class FrameError(Exception):
    """The client broke the protocol or a limit: the connection ends with this close code."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason


class UnreadableMessage(FrameError):
    """A compressed message that does not inflate. Not a framing error: Go's reader hands the
    stream to the command decoder, whose read fails, and the client is disconnected with 3501."""

    def __init__(self) -> None:
        super().__init__(3501, "bad request")


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
    """The status code of a valid close frame's payload (1005 when it has none: a payload of one
    byte is read as none, as Go's reader reads it)."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_NO_STATUS


class MessageReader:
    """Turns the bytes of one connection into ``(opcode, payload)`` pairs.

    Data messages come out whole as ``(OPCODE_TEXT or OPCODE_BINARY, message)`` (inflated);
    control frames as ``(OPCODE_PING, OPCODE_PONG or OPCODE_CLOSE, payload)``, the close payload
    already checked. At a violation :meth:`feed` returns what came before it and leaves the
    :class:`FrameError` in :attr:`error` for the caller to take, so that the earlier messages are
    served first, as Go's reader reads one message at a time; the reader then reads nothing more.
    Only an incomplete frame and the fragments of an unfinished message are held between calls,
    both bounded by the wire limit.
    """

    __slots__ = (
        "_buffer",
        "_compressed",
        "_deflate",
        "_fragments",
        "_limits",
        "_opcode",
        "_received",
        "_stopped",
        "_unchecked",
        "error",
    )

    _unmask = staticmethod(unmask)
    """How a payload is unmasked: a subclass may bring a faster one (rotary's transports bring
    aiohttp's compiled one, which this layer may not import)."""

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
        self.error: FrameError | None = None
        """Why the reader stopped, until the caller takes it (sets it back to None)."""
        self._stopped = False
        self._unchecked = _WHOLE_COMPRESSED_MESSAGES if deflate else _WHOLE_MESSAGES
        """First bytes of frames whose header cannot break a rule when masked and outside a
        fragmented message: what nearly every client frame is, so only the rest is checked."""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages and control frames completed by ``data``, in order, up to a violation."""
        out: list[tuple[int, bytes]] = []
        if self._stopped:
            return out
        try:
            self._feed(data, out)
        except FrameError as exc:
            self.error = exc
            self._stopped = True
            self._buffer = b""
            self._fragments = None
        return out

    def _feed(self, data: bytes, out: list[tuple[int, bytes]]) -> None:
        if self._buffer:
            data = self._buffer + data
        end = len(data)
        pos = 0
        wire_limit = self._limits.wire
        while end - pos >= 2:
            first = data[pos]
            second = data[pos + 1]
            if first not in self._unchecked or not second & _MASKED or self._fragments is not None:
                self._check_header(first, second)
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
            if opcode < 8 and wire_limit and self._received + size > wire_limit:
                raise FrameError(CLOSE_MESSAGE_TOO_BIG)
            if end - start < size:
                break
            payload = self._unmask(data[start : start + size], data[start - 4 : start])
            pos = start + size
            self._frame(first, opcode, payload, out)
        self._buffer = data[pos:] if pos < end else b""

    def _check_header(self, first: int, second: int) -> None:
        """Every rule of RFC 6455 a frame's first two bytes can break, listed as Go's reader lists
        them, in its order; the frame's length and payload are not awaited."""
        wrong: list[str] = []
        if first & _RSV1 and not self._deflate:
            wrong.append("RSV1 set")
        if first & _RSV2:
            wrong.append("RSV2 set")
        if first & _RSV3:
            wrong.append("RSV3 set")
        opcode = first & 0x0F
        if opcode in (OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG):
            if second & 0x7F > _MAX_CONTROL_PAYLOAD:
                wrong.append("len > 125 for control")
            if not first & _FIN:
                wrong.append("FIN not set on control")
        elif opcode in (OPCODE_TEXT, OPCODE_BINARY):
            if self._fragments is not None:
                wrong.append("data before FIN")
        elif opcode == OPCODE_CONTINUATION:
            if self._fragments is None:
                wrong.append("continuation after FIN")
        else:
            wrong.append(f"bad opcode {opcode}")
        if not second & _MASKED:
            wrong.append("bad MASK")
        if wrong:
            raise FrameError(CLOSE_PROTOCOL_ERROR, ", ".join(wrong))

    def _frame(self, first: int, opcode: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        """A frame whose header passed :meth:`_check_header`."""
        fin = bool(first & _FIN)
        if opcode >= 8:
            if opcode == OPCODE_CLOSE:
                _check_close(payload)
            out.append((opcode, payload))
            return
        if opcode == OPCODE_CONTINUATION:
            assert self._fragments is not None  # _check_header refused a continuation without one
            self._fragments.append(payload)
        else:
            self._opcode = opcode
            self._compressed = bool(first & _RSV1)
            if fin:
                out.append((opcode, self._message(payload)))
                return
            self._fragments = [payload]
        self._received += len(payload)
        if fin:
            message = b"".join(self._fragments)
            self._fragments = None
            self._received = 0
            out.append((self._opcode, self._message(message)))

    def _message(self, payload: bytes) -> bytes:
        if self._compressed:
            return _inflate(payload, self._limits.inflated)
        return payload


def _inflate(payload: bytes, limit: int) -> bytes:
    """A compressed message inflated, never past ``limit`` bytes (0: no limit)."""
    inflater = zlib.decompressobj(_RAW_DEFLATE)
    try:
        message = inflater.decompress(payload + _EMPTY_BLOCK_TAIL, limit + 1 if limit else 0)
    except zlib.error:
        raise UnreadableMessage from None
    if limit and len(message) > limit:
        raise FrameError(CLOSE_MESSAGE_TOO_BIG, "message too big after decompression")
    return message


def _check_close(payload: bytes) -> None:
    """A close frame's code and reason, as Go's reader checks them (fewer than two bytes: no code)."""
    if len(payload) < 2:
        return
    code = close_code_of(payload)
    if code not in VALID_PEER_CLOSE_CODES and not 3000 <= code <= 4999:
        raise FrameError(CLOSE_PROTOCOL_ERROR, f"bad close code {code}")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "invalid utf8 payload in close frame") from None
