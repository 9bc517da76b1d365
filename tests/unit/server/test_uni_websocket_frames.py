"""How uni_websocket frames a batch of pushes, read back from a real socket pair: one text frame per
push, or the whole newline-joined batch in one frame with `uni_websocket.join_push_messages`."""

from __future__ import annotations

import asyncio
import socket

import pytest

from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes
from rotary.transports.uni_websocket import (
    UniWebSocketConnection,
    UniWebSocketOptions,
    uni_websocket_endpoint,
)


async def frames_written(join: bool, batch: bytes) -> list[bytes]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    sock, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    options = UniWebSocketOptions(join_push_messages=join)
    endpoint = uni_websocket_endpoint(Node(NodeConfig()), options)
    connection = UniWebSocketConnection(endpoint, sock, options, None, awaiting_request=True)
    connection.write(batch)
    connection.close(codes.DISCONNECT_CONNECTION_CLOSED)  # the peer's end: no push, no close frame
    theirs.settimeout(5)
    data = b""
    while chunk := await loop.run_in_executor(None, theirs.recv, 65536):
        data += chunk
    theirs.close()
    frames = []
    while data:
        assert data[0] == 0x81  # FIN, text
        size = data[1]
        assert size < 126
        frames.append(data[2 : 2 + size])
        data = data[2 + size :]
    return frames


@pytest.mark.parametrize(
    ("join", "expected"),
    [(False, [b'{"connect":{}}', b"{}"]), (True, [b'{"connect":{}}\n{}'])],
)
async def test_batch_framing(join: bool, expected: list[bytes]) -> None:
    assert await frames_written(join, b'{"connect":{}}\n{}') == expected
