"""A whole rotary server in the test's own event loop, and a JSON-protocol WebSocket client for it.

``await start_in_process(config)`` builds the server with ``build_server`` (real Node, ServerHooks,
WebSocket endpoint, HTTP API), starts the node and serves the external application with aiohttp's
TestServer on a free port. Clients connect with HMAC connection tokens signed with the config's
``client.token.hmac_secret_key``; API calls carry the config's ``http_api.key``. Tests that need the
real process (``rotary -c <file>``) use ``running_rotary`` of tests/compat/conftest.py instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import orjson
from aiohttp.test_utils import TestClient, TestServer

from rotary.node.node import Node
from rotary.server.app import Server, build_server
from rotary.server.config.schema import Config

WAIT = 5.0
"""Seconds a test waits for a reply, a push or a close before failing."""


class WsClient:
    """A bidirectional JSON-protocol connection: commands with ids, pushes kept in arrival order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.id = ""
        self._pushes: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0

    async def command(self, **body: Any) -> dict[str, Any]:
        """Sends ``{"id": <next>, **body}`` and returns the reply with that id."""
        self._next_id += 1
        command_id = self._next_id
        await self.ws.send_str(orjson.dumps({"id": command_id, **body}).decode())
        async with asyncio.timeout(WAIT):
            while command_id not in self._replies:
                await self._receive()
        return self._replies.pop(command_id)

    async def push(self, kind: str) -> dict[str, Any]:
        """The oldest push holding ``kind`` (pub, subscribe, unsubscribe, ...) not returned before."""
        async with asyncio.timeout(WAIT):
            while True:
                for index, push in enumerate(self._pushes):
                    if kind in push:
                        return self._pushes.pop(index)
                await self._receive()

    async def close_code(self) -> int | None:
        """Reads until the server closes the connection; its close code."""
        async with asyncio.timeout(WAIT):
            while not self.ws.closed:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
        return self.ws.close_code

    async def _receive(self) -> None:
        msg = await self.ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"connection ended: {msg.type} {self.ws.close_code}")
        for line in msg.data.splitlines():
            if not line:
                continue
            frame = orjson.loads(line)
            if "push" in frame:
                self._pushes.append(frame["push"])
            elif "id" in frame:
                self._replies[frame["id"]] = frame
            else:  # an empty object is a ping; answer with a pong
                await self.ws.send_str("{}")


@dataclass
class InProcessServer:
    config: Config
    server: Server
    http: TestClient[Any, Any]
    sockets: list[WsClient] = field(default_factory=list)

    @property
    def node(self) -> Node:
        return self.server.node

    async def connect(self, user: str, *channels: str) -> WsClient:
        """A client connected as ``user`` and subscribed (client-side) to ``channels``."""
        ws = await self.http.ws_connect(self.config.websocket.handler_prefix, protocols=("centrifuge-json",))
        client = WsClient(ws)
        self.sockets.append(client)
        token = jwt.encode({"sub": user}, self.config.client.token.hmac_secret_key, algorithm="HS256")
        reply = await client.command(connect={"token": token})
        client.id = reply["connect"]["client"]
        for channel in channels:
            reply = await client.command(subscribe={"channel": channel})
            assert "error" not in reply, reply
        return client

    async def call(self, method: str, payload: Any, **headers: str) -> tuple[int, Any]:
        """POSTs ``payload`` as JSON to ``<api prefix>/<method>`` with the API key: status and body,
        the body decoded when it is JSON."""
        prefix = self.config.http_api.handler_prefix.rstrip("/")
        response = await self.http.post(f"{prefix}/{method}", data=orjson.dumps(payload),
                                        headers={"X-API-Key": self.config.http_api.key, **headers})
        body = await response.read()
        return response.status, orjson.loads(body) if response.content_type == "application/json" else body

    async def close(self) -> None:
        for client in self.sockets:
            await client.ws.close()
        await self.node.shutdown(timeout=1.0)
        await self.http.close()
        await self.server.verifier.close()


async def start_in_process(config: Config) -> InProcessServer:
    server = build_server(config)
    await server.node.start()
    http: TestClient[Any, Any] = TestClient(TestServer(server.external))
    await http.start_server()
    return InProcessServer(config, server, http)
