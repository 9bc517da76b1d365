"""rotary's pytest plugin (the ``rotary`` pytest11 entry point): fixtures for testing hooks.

``rotary_node`` is a started :class:`rotary.Node` with default options (register hooks on it, or
build your own node); ``rotary_client`` connects :class:`rotary.testing.TestClient` instances and
closes them after the test::

    async def test_chat(rotary_client):
        node = build_my_node()          # the application's node, hooks registered
        async with node:
            client = await rotary_client(node, token="...")
            await client.subscribe("chat")

The fixtures are asyncio fixtures of pytest-asyncio; without it installed the plugin adds nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from rotary.embed.node import Node
from rotary.embed.testclient import TestClient

ClientFactory = Callable[..., Awaitable[TestClient]]

if importlib.util.find_spec("pytest_asyncio") is not None:  # nothing to offer without it
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def rotary_node() -> AsyncIterator[Node]:
        """A started Node with the memory engine and no hooks, shut down after the test."""
        async with Node() as node:
            yield node

    @pytest_asyncio.fixture
    async def rotary_client() -> AsyncIterator[ClientFactory]:
        """``await rotary_client(node, **TestClient_arguments)``: a connected TestClient, closed
        after the test."""
        clients: list[TestClient] = []

        async def connect(node: Node, **options: Any) -> TestClient:
            client = TestClient(node, **options)
            clients.append(client)
            await client.connect()
            return client

        yield connect
        for client in clients:
            await client.close()
