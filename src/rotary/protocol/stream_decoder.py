"""Commands read from a byte stream that has no frames of its own (WebTransport's bidirectional stream).

JSON commands end with a newline; Protobuf commands are uvarint-length-delimited, as in a WebSocket
frame. Bytes arrive in arbitrary pieces, so the decoder keeps the incomplete tail and hands back the
complete commands as one frame that the codecs already read as a batch. A command longer than the
message size limit is refused before it is buffered whole, as centrifugal/protocol's limited stream
decoders refuse it (https://centrifugal.dev/docs/transports/webtransport).
"""

from __future__ import annotations

from rotary.protocol.codec import ProtocolError, ProtocolType
from rotary.protocol.protobuf_codec import read_uvarint

_MAX_VARINT_BYTES = 10


class MessageTooLarge(ProtocolError):
    """A command longer than the stream's message size limit."""


class StreamDecoder:
    """Splits one inbound stream into frames of whole commands; sans-I/O."""

    def __init__(self, protocol: ProtocolType, limit: int) -> None:
        self._json = protocol is ProtocolType.JSON
        self._limit = limit
        self._tail = b""

    def feed(self, data: bytes) -> bytes:
        """The complete commands ``data`` finishes (b"" when none); MessageTooLarge past the limit."""
        buffer = self._tail + data if self._tail else data
        end = self._json_end(buffer) if self._json else self._protobuf_end(buffer)
        self._tail = buffer[end:]
        return buffer[:end]

    def finish(self) -> bytes:
        """What is left when the stream ends: a last JSON command without its newline is still one
        (Go's ReadBytes returns it with io.EOF), a cut Protobuf message is not."""
        tail, self._tail = self._tail, b""
        if not tail:
            return b""
        if self._json:
            return tail
        raise ProtocolError("stream ended inside a message")

    def _json_end(self, buffer: bytes) -> int:
        last = buffer.rfind(b"\n")
        start = 0
        end = last + 1
        while start < end:
            newline = buffer.find(b"\n", start, end)
            if newline - start > self._limit:
                raise MessageTooLarge(f"command longer than {self._limit} bytes")
            start = newline + 1
        if len(buffer) - end > self._limit:
            raise MessageTooLarge(f"command longer than {self._limit} bytes")
        return end

    def _protobuf_end(self, buffer: bytes) -> int:
        pos = 0
        while pos < len(buffer):
            try:
                size, body = read_uvarint(buffer, pos)
            except ProtocolError:
                if len(buffer) - pos >= _MAX_VARINT_BYTES:
                    raise
                break  # the length prefix itself is still arriving
            if size > self._limit:
                raise MessageTooLarge(f"command longer than {self._limit} bytes")
            if body + size > len(buffer):
                break
            pos = body + size
        return pos
