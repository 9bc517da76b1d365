"""A whole server in process for the API tests: the real Node, ServerHooks, WebSocket endpoint and
HTTP API built by ``build_server`` from a Config, served by aiohttp's TestServer on a free port, and
JSON-protocol WebSocket clients that connect with HMAC tokens."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from rotary.node.node import Node
from rotary.server.api.executor import ApiExecutor
from rotary.server.app import Server, build_server
from rotary.server.channels import ChannelRules
from rotary.server.config.schema import ClientConfig, Config, TokenConfig
from rotary.server.config.schema_channels import ChannelConfig, ChannelOptions, NamespaceConfig
from rotary.server.config.schema_transports import HttpAPIConfig

SECRET = "api-tests-hmac-secret-key-of-at-least-32-bytes"
API_KEY = "api-tests-key"
WAIT = 5.0

SUBSCRIBABLE = {"allow_subscribe_for_client": True}
CHANNELS = ChannelConfig(
    without_namespace=ChannelOptions(**SUBSCRIBABLE),
    namespaces=(
        NamespaceConfig(name="hist", history_size=10, history_ttl=300.0, **SUBSCRIBABLE),
        NamespaceConfig(name="pres", presence=True, **SUBSCRIBABLE),
        NamespaceConfig(name="json", publication_data_format="json"),
        NamespaceConfig(name="bin", publication_data_format="binary", history_size=10, history_ttl=300.0),
        NamespaceConfig(name="map", subscription_type="map"),
    ),
)


def make_config(**http_api: Any) -> Config:
    """The test config; keyword arguments replace fields of ``http_api``."""
    return Config(
        client=ClientConfig(token=TokenConfig(hmac_secret_key=SECRET)),
        http_api=dataclasses.replace(HttpAPIConfig(key=API_KEY), **http_api),
        channel=CHANNELS,
    )


class WsClient:
    """A bidirectional JSON-protocol connection: commands with ids, pushes kept in arrival order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.id = ""
        self._pushes: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0

    async def command(self, **body: Any) -> dict[str, Any]:
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
class Stack:
    server: Server
    http: TestClient[Any, Any]
    executor: ApiExecutor
    sockets: list[WsClient] = field(default_factory=list)

    @property
    def node(self) -> Node:
        return self.server.node

    async def connect(self, user: str, *channels: str) -> WsClient:
        """A client connected as ``user`` and subscribed (client-side) to ``channels``."""
        ws = await self.http.ws_connect("/connection/websocket", protocols=("centrifuge-json",))
        client = WsClient(ws)
        self.sockets.append(client)
        reply = await client.command(connect={"token": jwt.encode({"sub": user}, SECRET, algorithm="HS256")})
        client.id = reply["connect"]["client"]
        for channel in channels:
            assert "error" not in await client.command(subscribe={"channel": channel})
        return client

    async def call(self, method: str, payload: Any, **headers: str) -> tuple[int, Any]:
        """POSTs ``payload`` as JSON to ``/api/<method>`` with the API key; status and decoded body."""
        response = await self.http.post(f"/api/{method}", data=orjson.dumps(payload),
                                        headers={"X-API-Key": API_KEY, **headers})
        body = await response.read()
        return response.status, orjson.loads(body) if response.content_type == "application/json" else body

    async def close(self) -> None:
        for client in self.sockets:
            await client.ws.close()
        await self.node.shutdown(timeout=1.0)
        await self.http.close()
        await self.server.verifier.close()


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack() -> AsyncIterator[StackFactory]:
    """``await make_stack(config)`` starts a server; every one started stops after the test."""
    made: list[Stack] = []

    async def make(config: Config | None = None) -> Stack:
        config = config or make_config()
        server = build_server(config)
        await server.node.start()
        http: TestClient[Any, Any] = TestClient(TestServer(server.external))
        await http.start_server()
        made.append(Stack(server, http, ApiExecutor(server.node, config, ChannelRules(config.channel))))
        return made[-1]

    yield make
    for stack in made:
        await stack.close()


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()
