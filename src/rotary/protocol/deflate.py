"""permessage-deflate (RFC 7692) for server frames, compressed once and shared by many sockets.

Centrifugo negotiates the extension whenever `websocket.compression` is on and the client offers
it, always answering with both `no_context_takeover` parameters
(https://centrifugal.dev/docs/transports/websocket, section "compression"). Without context
takeover a compressed message depends on no earlier message of the connection, so the fan-out can
compress a publication once for every subscriber of a group, exactly as it frames it once. Messages
of at most `compression_min_size` bytes travel uncompressed (RSV1 clear), as in Centrifugo.
See https://www.rfc-editor.org/rfc/rfc7692.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Final

EXTENSION: Final = "permessage-deflate"
RESPONSE: Final = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
"""The Sec-WebSocket-Extensions answer, the same for every offer, as Centrifugo sends it."""

DEFAULT_LEVEL: Final = 1
"""The level used when `compression_level` is out of range; Centrifugo logs and keeps this one."""
MIN_LEVEL: Final = -2  # Go's flate.HuffmanOnly
MAX_LEVEL: Final = 9

_EMPTY_BLOCK_TAIL: Final = b"\x00\x00\xff\xff"  # RFC 7692 section 7.2.1: stripped by the sender
_RAW_DEFLATE: Final = -15  # negative window bits: no zlib header or checksum


def offered(header_values: Iterable[str]) -> bool:
    """Whether a Sec-WebSocket-Extensions request header offers permessage-deflate.

    Only the extension name counts, whatever its parameters, as Centrifugo accepts any offer of it.
    """
    for value in header_values:
        for extension in value.split(","):
            if extension.split(";", 1)[0].strip() == EXTENSION:
                return True
    return False


def valid_level(level: int) -> bool:
    """Levels Centrifugo accepts: Go's flate levels, -2 (Huffman only) to 9."""
    return MIN_LEVEL <= level <= MAX_LEVEL


class MessageDeflater:
    """Compresses whole messages with no context taken over from one message to the next.

    One zlib stream is reused: a full flush ends each message on a byte boundary and forgets the
    history, so the output equals that of a fresh compressor, without paying for a new one (and
    its window allocation) per message.
    """

    def __init__(self, level: int = DEFAULT_LEVEL, min_size: int = 0) -> None:
        self.level = level if valid_level(level) else DEFAULT_LEVEL
        self.min_size = min_size
        self.framing_suffix = f"deflate{self.level}/{min_size}"
        """Added to a transport's framing key: equal settings give equal bytes."""
        huffman_only = self.level == MIN_LEVEL
        self._stream = zlib.compressobj(
            zlib.Z_BEST_SPEED if huffman_only else self.level,
            zlib.DEFLATED,
            _RAW_DEFLATE,
            strategy=zlib.Z_HUFFMAN_ONLY if huffman_only else zlib.Z_DEFAULT_STRATEGY,
        )

    def compresses(self, size: int) -> bool:
        """Whether a message of ``size`` bytes is compressed: all of them when the minimum is 0,
        else only those longer than it."""
        return self.min_size == 0 or size > self.min_size

    def deflate(self, message: bytes) -> bytes:
        """The payload of a compressed frame (RSV1 set) carrying ``message``."""
        out = self._stream.compress(message) + self._stream.flush(zlib.Z_FULL_FLUSH)
        return out[:-4] if out.endswith(_EMPTY_BLOCK_TAIL) else out
