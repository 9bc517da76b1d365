"""The 101 answer rotary writes itself (transports/ws_handshake.py) is aiohttp's, byte for byte.

One app serves the same endpoint twice, with rotary's own protocol (which answers a well-formed
upgrade itself) and with aiohttp's handler (whose WebSocketResponse answers every upgrade); the
same raw request to both gets the same bytes back, but for the Date header's second. Requests
aiohttp refuses get aiohttp's own 400 from both. The app has the standalone server's response
signals (no ``Server`` header; ``Alt-Svc`` on everything but a 101).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from helpers.raw_upgrade import REFUSED, WELL_FORMED

from rotary.node.node import Node, NodeConfig
from rotary.protocol.deflate import MessageDeflater
from rotary.server.alt_svc import advertise_http3
from rotary.server.server_header import send_no_server_header
from rotary.transports.websocket import websocket_handler
from rotary.transports.ws_connection import own_websocket_handler, websocket_endpoint

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


class Served:
    def __init__(self, server: TestServer) -> None:
        self.server = server

    async def answer(self, path: str, request: str) -> bytes:
        """The response head to ``request`` (its ``{path}`` filled in), Date left out."""
        reader, writer = await asyncio.open_connection(self.server.host, self.server.port)
        try:
            writer.write(request.replace("{path}", path).encode("utf-8", "surrogateescape"))
            head = await reader.readuntil(b"\r\n\r\n")
            size = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
            body = await reader.readexactly(int(size.group(1))) if size else b""
        finally:
            writer.close()
        return DATE.sub(b"\r\nDate: -\r\n", head) + body


@pytest.fixture(params=[False, True], ids=["plain", "compression"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    node = Node(NodeConfig(ping_interval=0))
    await node.start()
    compression = MessageDeflater(1, 0) if request.param else None
    endpoint = websocket_endpoint(node, 65536, 0, 0)
    app = web.Application()
    app.on_shutdown.append(endpoint.shutdown)
    send_no_server_header(app)
    advertise_http3(app, 8443)
    app.router.add_get("/own", own_websocket_handler(node, endpoint, compression=compression))
    app.router.add_get("/aiohttp", websocket_handler(node, compression=compression))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield Served(server)
    await server.close()
    await node.shutdown()


@pytest.mark.parametrize("name", WELL_FORMED)
async def test_a_well_formed_upgrade_gets_aiohttps_answer(served: Served, name: str) -> None:
    ours = await served.answer("/own", WELL_FORMED[name])
    assert ours.startswith(b"HTTP/1.") and b" 101 Switching Protocols\r\n" in ours
    assert b"Server:" not in ours and b"Alt-Svc" not in ours
    assert ours == await served.answer("/aiohttp", WELL_FORMED[name])


@pytest.mark.parametrize("name", REFUSED)
async def test_a_malformed_upgrade_gets_aiohttps_400(served: Served, name: str) -> None:
    ours = await served.answer("/own", REFUSED[name])
    assert ours.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Alt-Svc" in ours
    assert ours == await served.answer("/aiohttp", REFUSED[name])
