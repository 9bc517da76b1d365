"""uni_websocket with `uni_websocket.compression` on, against Centrifugo on bare sockets: a compressed
connect request is read, and a compressed message that does not inflate ends the connection with no
close frame, before the connect as after it (Centrifugo's handler gets a read error, not a frame
error, and its reader writes no close frame for it).
See https://centrifugal.dev/docs/transports/uni_websocket.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from differential.conftest import CONFIG, Pair
from differential.raw_websocket import RawSocket
from differential.runner import Target, token

PATH = "/connection/uni_websocket"
DEFLATE = "permessage-deflate"
GARBAGE = b"\xff" * 8
"""Not a deflate stream: the message does not inflate."""


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return CONFIG | {"uni_websocket": {"enabled": True, "compression": True}}


async def connected(target: Target) -> RawSocket:
    socket = await RawSocket.upgrade(target, DEFLATE, PATH)
    assert socket.extensions(), socket.head
    socket.send(orjson.dumps({"token": token("u1")}), compress=True)
    _, push = await socket.frame()
    assert b'"connect"' in push, push
    return socket


async def test_garbage_as_the_connect_request(pair: Pair) -> None:
    endings = []
    for target in (pair.centrifugo, pair.rotary):
        socket = await RawSocket.upgrade(target, DEFLATE, PATH)
        socket.send_frame(0xC1, GARBAGE)
        endings.append(await socket.ending())
        socket.close()
    assert endings == ["closed without a close frame"] * 2, endings


async def test_garbage_after_the_connect(pair: Pair) -> None:
    endings = []
    for target in (pair.centrifugo, pair.rotary):
        socket = await connected(target)
        socket.send_frame(0xC1, GARBAGE)
        endings.append(await socket.ending())
        socket.close()
    assert endings == ["closed without a close frame"] * 2, endings
