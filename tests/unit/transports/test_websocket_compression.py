"""permessage-deflate on the WebSocket endpoint, with a real Node, real sockets and aiohttp's client:
the negotiation Centrifugo answers, one compression per fan-out group whatever its size, messages
at most `compression_min_size` long sent uncompressed, and client frames inflated with a bound."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from helpers.raw_upgrade import raw_upgrade

from rotary.engines.base import PublishOptions
from rotary.node.node import Node, NodeConfig
from rotary.protocol import deflate
from rotary.protocol.deflate import MessageDeflater
from rotary.transports.uni_websocket import UniWebSocketOptions, uni_websocket_endpoint, uni_websocket_handler
from rotary.transports.websocket import websocket_handler
from rotary.transports.ws_connection import own_websocket_handler, websocket_endpoint

LARGE = orjson.dumps({"text": "a publication worth compressing " * 40})


class CountingDeflater(MessageDeflater):
    """The real deflater, counting the messages it compresses."""

    def __init__(self, level: int = 1, min_size: int = 0) -> None:
        super().__init__(level, min_size)
        self.calls = 0

    def deflate(self, message: bytes) -> bytes:
        self.calls += 1
        return super().deflate(message)


class Endpoint:
    def __init__(self, node: Node, server: TestServer, deflater: CountingDeflater) -> None:
        self.node = node
        self.server = server
        self.deflater = deflater

    async def raw(self, offer: str | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        """A hand-made upgrade, to see the response head and the frame bits aiohttp would hide."""
        return await raw_upgrade(self.server.host, self.server.port, "/ws", offer)


async def start(deflater: CountingDeflater, server: str, message_size_limit: int = 65536) -> Endpoint:
    """The endpoint served by aiohttp's handler or, after the upgrade, by rotary's own protocol."""
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    app = web.Application()
    if server == "own":
        shared = websocket_endpoint(node, message_size_limit, 0, 0)
        app.on_shutdown.append(shared.shutdown)
        handler = own_websocket_handler(node, shared, compression=deflater)
    else:
        handler = websocket_handler(node, message_size_limit=message_size_limit, compression=deflater)
    app.router.add_get("/ws", handler)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    return Endpoint(node, test_server, deflater)


@pytest.fixture(params=["aiohttp", "own"])
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def endpoint(server: str) -> AsyncIterator[Endpoint]:
    found = await start(CountingDeflater(), server)
    yield found
    await found.server.close()
    await found.node.shutdown()


async def subscribed(
    session: aiohttp.ClientSession, endpoint: Endpoint, compress: int
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(endpoint.server.make_url("/ws"), compress=compress)
    await ws.send_str('{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"news"}}')
    replies = 0
    while replies < 2:
        replies += len((await ws.receive_str()).splitlines())
    return ws


async def test_one_compression_per_group_and_every_subscriber_decodes_it(endpoint: Endpoint) -> None:
    async with aiohttp.ClientSession() as session:
        compressing = [await subscribed(session, endpoint, 15) for _ in range(4)]
        plain = await subscribed(session, endpoint, 0)
        assert all(ws.compress == 15 for ws in compressing) and plain.compress == 0
        before = endpoint.deflater.calls
        await endpoint.node.publish("news", LARGE, PublishOptions())
        expected = b'{"push":{"channel":"news","pub":{"data":%b}}}' % LARGE
        for ws in [*compressing, plain]:
            assert (await ws.receive_str()).encode() == expected
        assert endpoint.deflater.calls - before == 1
        for ws in [*compressing, plain]:
            await ws.close()


async def test_negotiation_answers_as_centrifugo(endpoint: Endpoint) -> None:
    for offer in (
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=10",
    ):
        _, writer, head = await endpoint.raw(offer)
        assert f"Sec-WebSocket-Extensions: {deflate.RESPONSE}\r\n".encode() in head
        writer.close()
    _, writer, head = await endpoint.raw(None)
    assert head.startswith(b"HTTP/1.1 101") and b"sec-websocket-extensions" not in head.lower()
    writer.close()


def masked(payload: bytes, first: int) -> bytes:
    assert len(payload) < 126
    mask = b"\x01\x02\x03\x04"
    return bytes([first, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2))
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8))
    return first, await reader.readexactly(size)


async def test_messages_up_to_min_size_go_uncompressed(server: str) -> None:
    endpoint = await start(CountingDeflater(min_size=200), server)
    reader, writer, _ = await endpoint.raw("permessage-deflate")
    connect = zlib.compressobj(1, zlib.DEFLATED, -15)
    body = connect.compress(b'{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"news"}}')
    writer.write(masked((body + connect.flush(zlib.Z_SYNC_FLUSH))[:-4], 0x80 | 0x40 | 0x1))
    replies = 0
    while replies < 2:
        first, payload = await read_frame(reader)
        assert first == 0x81  # short replies: FIN, text, RSV1 clear
        replies += len(payload.splitlines())
    await endpoint.node.publish("news", LARGE, PublishOptions())
    first, payload = await read_frame(reader)
    assert first == 0x80 | 0x40 | 0x1
    assert zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff").endswith(LARGE + b"}}}")
    writer.close()
    await endpoint.server.close()
    await endpoint.node.shutdown()


async def test_a_decompression_bomb_is_cut_at_the_inflated_limit_with_1009(endpoint: Endpoint) -> None:
    """Default decompressed limit: ten times `message_size_limit`, as in Centrifugo."""
    async with aiohttp.ClientSession() as session:
        bystander = await subscribed(session, endpoint, 15)
        reader, writer, _ = await endpoint.raw("permessage-deflate")
        bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
        payload = bomb.compress(b"\x00" * (65536 * 10 + 1)) + bomb.flush(zlib.Z_SYNC_FLUSH)
        assert len(payload) < 1000
        header = bytes([0x80 | 0x40 | 0x1, 0x80 | 126]) + len(payload).to_bytes(2)
        mask = b"\x00\x00\x00\x00"
        writer.write(header + mask + payload)
        first, close = await read_frame(reader)
        assert first == 0x88 and int.from_bytes(close[:2]) == 1009
        writer.close()
        await endpoint.node.publish("news", LARGE, PublishOptions())
        assert (await bystander.receive_str()).endswith(LARGE.decode() + "}}}")
        await bystander.close()


async def test_uni_websocket_compresses_pushes_once_for_every_subscriber() -> None:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    deflater = CountingDeflater()
    app = web.Application()
    options = UniWebSocketOptions(compression=deflater)
    app.router.add_get("/uni", uni_websocket_handler(uni_websocket_endpoint(node, options), options))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            sockets = []
            for _ in range(3):
                ws = await session.ws_connect(server.make_url("/uni"), compress=15)
                assert ws.compress == 15
                await ws.send_str("{}")
                client = orjson.loads(await ws.receive_str())["connect"]["client"]
                await node.subscribe("", "news", client_id=client)  # server-side, as the API does
                assert '"subscribe"' in await ws.receive_str()
                sockets.append(ws)
            before = deflater.calls
            await node.publish("news", LARGE, PublishOptions())
            for ws in sockets:
                assert (await ws.receive_str()).encode() == b'{"channel":"news","pub":{"data":%b}}' % LARGE
            assert deflater.calls - before == 1
            for ws in sockets:
                await ws.close()
    finally:
        await server.close()
        await node.shutdown()
