"""WebSocket compression of rotary and Centrifugo side by side, from one config with
`websocket.compression` on: the Sec-WebSocket-Extensions answer to the same offers, which frames
are compressed (RSV1) around `compression_min_size`, and the close code of a decompression bomb.
Raw sockets, so that the extension bits no client library hides are compared.
See https://centrifugal.dev/docs/transports/websocket.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import orjson
import pytest

from differential.conftest import CONFIG, Pair
from differential.raw_websocket import RawSocket
from differential.runner import API_KEY, Target, token

MIN_SIZE = 300
LIMIT = 2048


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return CONFIG | {
        "websocket": {"compression": True, "compression_min_size": MIN_SIZE, "message_size_limit": LIMIT}
    }


OFFERS = [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "x-webkit-deflate-frame",
    "foo, permessage-deflate; client_max_window_bits",
    None,
]


@pytest.mark.parametrize("offer", OFFERS)
async def test_same_extension_answer(pair: Pair, offer: str | None) -> None:
    answers = []
    for target in (pair.centrifugo, pair.rotary):
        socket = await RawSocket.upgrade(target, offer)
        assert socket.head.startswith(b"HTTP/1.1 101"), socket.head
        answers.append(socket.extensions())
        socket.close()
    assert answers[0] == answers[1]


async def _compressed_bits(target: Target, channel: str) -> list[tuple[int, Any]]:
    socket = await RawSocket.upgrade(target, "permessage-deflate; client_max_window_bits")
    commands = [
        {"id": 1, "connect": {"token": token("compress-user")}},
        {"id": 2, "subscribe": {"channel": channel}},
    ]
    socket.send(b"\n".join(orjson.dumps(c) for c in commands), compress=True)
    replies: list[Any] = []
    seen: list[tuple[int, Any]] = []
    while len(replies) < 2:
        first, payload = await socket.frame()
        replies += payload.splitlines()
        seen.append((first, len(payload.splitlines())))
    for data in ({"text": "x" * (MIN_SIZE * 2)}, {"small": 1}):
        await _publish(target, channel, data)
        first, payload = await socket.frame()
        seen.append((first, orjson.loads(payload)["push"]["pub"]["data"]))
    socket.close()
    return seen


async def _publish(target: Target, channel: str, data: Any) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{target.http_url}/api/publish",
            json={"channel": channel, "data": data},
            headers={"X-API-Key": API_KEY},
        )
        assert response.status == 200, await response.text()


async def test_same_frames_compressed(pair: Pair) -> None:
    """Large replies and publications compressed, those of at most `compression_min_size` not."""
    centrifugo = await _compressed_bits(pair.centrifugo, "plain:compress-c")
    rotary = await _compressed_bits(pair.rotary, "plain:compress-r")
    # Centrifugo's writer joins the connect and subscribe replies into one message when both are
    # queued before it writes (timing), so the first byte is compared per reply, not per message.
    assert _per_reply(centrifugo) == _per_reply(rotary)
    assert [data for _, data in centrifugo][-2:] == [data for _, data in rotary][-2:]


def _per_reply(seen: list[tuple[int, Any]]) -> list[int]:
    """Each frame's first byte once per reply it carries (publications carry one)."""
    return [first for first, data in seen for _ in range(data if isinstance(data, int) else 1)]


async def test_same_close_for_a_decompression_bomb(pair: Pair) -> None:
    """A frame under `message_size_limit` that inflates past ten times it: 1009 from both."""
    codes = []
    for target in (pair.centrifugo, pair.rotary):
        socket = await RawSocket.upgrade(target, "permessage-deflate")
        socket.send(b"\x00" * (LIMIT * 10 + 1000), compress=True)
        codes.append(await socket.ending())
        socket.close()
    assert codes[0] == codes[1], codes
    assert codes[0][:1] == (0x88,) and codes[0][1][:2] == (1009).to_bytes(2), codes


async def test_same_close_for_a_compressed_frame_over_the_limit(pair: Pair) -> None:
    """`message_size_limit` bounds the bytes received, compressed or not, the decompressed limit
    the inflated message: incompressible bytes past LIMIT on the wire get 1009 although they
    inflate to less than ten times LIMIT."""
    payload = os.urandom(LIMIT).hex().encode()  # 2 x LIMIT long, about 1.1 x LIMIT deflated
    codes = []
    for target in (pair.centrifugo, pair.rotary):
        socket = await RawSocket.upgrade(target, "permessage-deflate")
        socket.send(payload, compress=True)
        codes.append(await socket.ending())
        socket.close()
    assert codes[0] == codes[1], codes
    assert codes[0][:1] == (0x88,) and codes[0][1][:2] == (1009).to_bytes(2), codes


async def test_an_uncompressed_frame_on_a_compressing_connection_has_the_same_limit(pair: Pair) -> None:
    codes = []
    for target in (pair.centrifugo, pair.rotary):
        socket = await RawSocket.upgrade(target, "permessage-deflate")
        socket.send(b"x" * (LIMIT + 100), compress=False)
        codes.append(await socket.ending())
        socket.close()
    assert codes[0] == codes[1], codes
    assert codes[0][:1] == (0x88,) and codes[0][1][:2] == (1009).to_bytes(2), codes
