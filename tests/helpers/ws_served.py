"""An endpoint of rotary's own WebSocket protocol (transports/ws_protocol.py) served by aiohttp on a
loopback port, for the unit tests of /connection/websocket and /connection/uni_websocket."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from rotary.node.node import Node
from rotary.transports.ws_protocol import WebSocketEndpoint


class Served:
    def __init__(self, node: Node, endpoint: WebSocketEndpoint, app: web.Application, server: TestServer):
        self.node = node
        self.endpoint = endpoint
        self.app = app
        self.server = server

    def aiohttp_connections(self) -> int:
        """Connections aiohttp still knows (none once one is handed over to rotary's protocol)."""
        assert self.server.runner is not None and self.server.runner.server is not None
        return len(self.server.runner.server.connections)


@contextlib.asynccontextmanager
async def serving(
    node: Node, endpoint: WebSocketEndpoint, path: str, handler: web.Handler
) -> AsyncIterator[Served]:
    """``handler`` at ``path`` with the endpoint's shutdown registered; the started ``node`` is shut
    down at the end."""
    app = web.Application()
    app.on_shutdown.append(endpoint.shutdown)
    app.router.add_get(path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Served(node, endpoint, app, server)
    finally:
        await server.close()
        await node.shutdown()


def live(kind: type) -> int:
    """How many objects of ``kind`` the garbage collector can still reach."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


async def settle(condition: Callable[[], bool]) -> None:
    """Yields to the loop until ``condition()`` holds; the bound only stops a broken run hanging."""
    async with asyncio.timeout(60):
        while not condition():
            await asyncio.sleep(0.01)
