"""Frames that break RFC 6455 or RFC 7692, sent to rotary and Centrifugo on bare sockets: both must
end the connection the same way (the close frame's code and reason, or no close frame).
See https://centrifugal.dev/docs/transports/websocket and https://www.rfc-editor.org/rfc/rfc6455.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from differential.conftest import CONFIG, Pair
from differential.raw_websocket import RawSocket

DEFLATE = "permessage-deflate"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return CONFIG | {"websocket": {"compression": True}, "uni_websocket": {"enabled": True}}


@dataclass(frozen=True)
class BadFrame:
    name: str
    first: int
    payload: bytes
    offer: str | None = None
    masked: bool = True


BAD_FRAMES = [
    BadFrame("compressed-not-deflate", 0xC1, b"\xff" * 8, offer=DEFLATE),
    BadFrame("compression-bit-without-extension", 0xC1, b"{}"),
    BadFrame("invalid-utf8-text", 0x81, b"\xff\xfe"),
    BadFrame("unmasked", 0x81, b"{}", masked=False),
    BadFrame("rsv2", 0xA1, b"{}"),
    BadFrame("unknown-opcode", 0x83, b"x"),
    BadFrame("continuation-without-start", 0x80, b"x"),
    BadFrame("fragmented-ping", 0x09, b""),
    BadFrame("ping-over-125-bytes", 0x89, b"p" * 126),
    BadFrame("close-of-one-byte", 0x88, b"\x03"),
    BadFrame("close-with-invalid-code", 0x88, (999).to_bytes(2)),
    BadFrame("close-with-invalid-utf8-reason", 0x88, (1000).to_bytes(2) + b"\xff"),
]


PATHS = ["/connection/websocket", "/connection/uni_websocket"]
"""Centrifugo reads both with the same Go reader, and rotary both with its own (protocol/ws_reader.py)."""


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bad", BAD_FRAMES, ids=lambda bad: bad.name)
async def test_same_end_for_a_bad_frame(pair: Pair, bad: BadFrame, path: str) -> None:
    endings = []
    for target in (pair.centrifugo, pair.rotary):
        socket = await RawSocket.upgrade(target, bad.offer, path)
        socket.send_frame(bad.first, bad.payload, bad.masked)
        endings.append(await socket.ending())
        socket.close()
    assert endings[0] == endings[1], endings
