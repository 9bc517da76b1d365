"""StreamTransport (transports/stream.py) on a real socket pair: framing, the disconnect push that
ends a stream, and the bound on commands waiting to run."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import orjson
import pytest

from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.streaming import http_chunk, http_stream_body, sse_event
from rotary.transports.stream import MAX_PENDING_FRAMES, StreamTransport


@pytest.fixture
async def pair() -> AsyncIterator[tuple[asyncio.Transport, socket.socket]]:
    """The server end as an asyncio transport, and the peer's plain socket."""
    ours, peer = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    peer.settimeout(5)
    yield transport, peer
    transport.close()
    peer.close()


def json_stream(sock: asyncio.Transport) -> StreamTransport:
    def body(payload: bytes) -> bytes:
        return http_stream_body(payload, ProtocolType.JSON)

    return StreamTransport("http_stream", ProtocolType.JSON, body, sock, chunked=True)


async def received(peer: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await asyncio.to_thread(peer.recv, 65536)
    return data


async def test_batches_go_out_as_chunks_and_the_stream_ends_with_a_disconnect_push(
    pair: tuple[asyncio.Transport, socket.socket],
) -> None:
    sock, peer = pair
    stream = json_stream(sock)
    assert stream.framing == "http_stream-json-chunked"
    stream.write(b'{"id":1}')
    stream.close(codes.DISCONNECT_SHUTDOWN)
    stream.write(b'{"id":2}')  # after the close: dropped
    push = orjson.dumps({"push": {"disconnect": {"code": 3001, "reason": "shutdown"}}}) + b"\n"
    expected = http_chunk(b'{"id":1}\n') + http_chunk(push)
    assert await received(peer, len(expected)) == expected
    assert await stream.next_frame() is None


async def test_a_connection_closed_as_gone_gets_no_disconnect_push(
    pair: tuple[asyncio.Transport, socket.socket],
) -> None:
    sock, _ = pair
    stream = StreamTransport("sse", ProtocolType.JSON, sse_event, sock, chunked=False)
    stream.close(codes.DISCONNECT_CONNECTION_CLOSED)
    assert sock.get_write_buffer_size() == 0
    assert stream.framing == "sse-json-raw"


async def test_inbound_frames_run_in_order_and_are_bounded(
    pair: tuple[asyncio.Transport, socket.socket],
) -> None:
    sock, _ = pair
    stream = json_stream(sock)
    for n in range(MAX_PENDING_FRAMES):
        assert stream.receive(b"%d" % n)
    assert not stream.receive(b"one too many")
    assert [await stream.next_frame() for _ in range(3)] == [b"0", b"1", b"2"]
    for n in range(3, MAX_PENDING_FRAMES):
        assert await stream.next_frame() == b"%d" % n
    reader = asyncio.ensure_future(stream.next_frame())
    await asyncio.sleep(0)
    assert not reader.done()  # waits for the next frame
    stream.receive(b"later")
    assert await reader == b"later"
    reader = asyncio.ensure_future(stream.next_frame())
    await asyncio.sleep(0)
    stream.close(codes.DISCONNECT_SHUTDOWN)
    assert await reader is None
