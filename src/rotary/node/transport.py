"""What the node needs from a transport: synchronous writes of bytes it already framed or not.

Transports (``rotary.transports``) implement this; the node only relies on its shape, which keeps
imports pointing from transports to the node and never back.
"""

from __future__ import annotations

from typing import Protocol

from rotary.protocol.codec import ProtocolType
from rotary.protocol.codes import Disconnect


class Transport(Protocol):
    name: str
    """Centrifugo's transport name ("websocket", "sse", "uni_websocket", ...)."""
    protocol: ProtocolType
    unidirectional: bool
    framing: str
    """Connections with equal (protocol, unidirectional, framing) share one prepared frame."""

    def frame(self, payload: bytes) -> bytes:
        """Wraps an encoded message (or batch) in this transport's framing; pure."""
        ...

    def write(self, payload: bytes) -> None:
        """Frames and writes one encoded message or batch; never blocks."""
        ...

    def write_prepared(self, frame: bytes) -> int:
        """Writes bytes that `frame` (of any transport with the same key) already produced; returns
        the bytes accepted by writes but not yet sent to the peer, so that the fan-out checks the
        slow-client limit without a second call per delivery."""
        ...

    def close(self, disconnect: Disconnect) -> int:
        """Ends the connection with this code; idempotent. Returns the size of the disconnect push
        it wrote (encoded, before framing) for the metrics; 0 when it said goodbye otherwise (a close
        frame) or not at all."""
        ...

    def abort(self) -> None:
        """Ends the connection at once, with no goodbye to the peer (no close frame, no push)."""
        ...
