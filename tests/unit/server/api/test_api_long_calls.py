"""A long API call leaves the event loop to everyone else: while one batch or broadcast of tens of
thousands of commands runs, another request is answered before it ends. Checked by order of events
(the call's first publication has reached a subscriber, the health check answers, the call's last
publication is not in history yet), never by timing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from api_settings import API_KEY, make_config
from helpers.server import InProcessServer, start_in_process

from rotary.server.api.executor import ApiExecutor
from rotary.server.api.schema import HistoryRequest
from rotary.server.channels import ChannelRules
from rotary.server.config.schema import HealthConfig

COMMANDS = 20_000
"""Enough for the parallel form's 1024 workers to give the loop 20 turns; the body stays under the
API's 1 MiB limit."""
STARTED_WITHIN = 60.0
"""Seconds for the call's body to be read and decoded, generous for a loaded machine."""


@pytest.fixture
async def stack() -> AsyncIterator[InProcessServer]:
    started = await start_in_process(dataclasses.replace(make_config(), health=HealthConfig(enabled=True)))
    yield started
    await started.close()


def publish(channel: str) -> dict[str, Any]:
    return {"channel": channel, "data": 1}


async def answered_while_running(stack: InProcessServer, path: str, body: bytes) -> None:
    """Posts ``body``, whose first publication goes to "news" and last one to "hist:end"; once the
    first arrives, a health check must complete while "hist:end" is still empty."""
    subscriber = await stack.connect("watcher", "news")
    call = asyncio.create_task(stack.http.post(path, data=body, headers={"X-API-Key": API_KEY}))
    async with asyncio.timeout(STARTED_WITHIN):
        while True:
            message = await subscriber.ws.receive()
            assert message.type is aiohttp.WSMsgType.TEXT, message
            if '"pub"' in message.data:
                break
    health = await stack.http.get(stack.config.health.handler_prefix)
    assert health.status == 200
    api = ApiExecutor(stack.node, stack.config, ChannelRules(stack.config.channel))
    assert not (await api.history(HistoryRequest(channel="hist:end", limit=1))).publications
    response = await call
    assert response.status == 200
    assert (await api.history(HistoryRequest(channel="hist:end", limit=1))).publications


@pytest.mark.parametrize("parallel", [False, True], ids=["in-turn", "parallel"])
async def test_batch(stack: InProcessServer, parallel: bool) -> None:
    channels = ["news", *(f"o{i}" for i in range(COMMANDS)), "hist:end"]
    commands = [{"publish": publish(channel)} for channel in channels]
    await answered_while_running(
        stack, "/api/batch", orjson.dumps({"commands": commands, "parallel": parallel})
    )


async def test_broadcast(stack: InProcessServer) -> None:
    channels = ["news", *(f"o{i}" for i in range(COMMANDS)), "hist:end"]
    await answered_while_running(
        stack, "/api/broadcast", orjson.dumps({"channels": channels, "data": {"n": 1}})
    )


async def test_legacy_commands(stack: InProcessServer) -> None:
    """Commands run in turn here, so half as many (longer lines) make as long a call."""
    channels = ["news", *(f"o{i}" for i in range(COMMANDS // 2)), "hist:end"]
    lines = [orjson.dumps({"method": "publish", "params": publish(channel)}) for channel in channels]
    await answered_while_running(stack, "/api", b"\n".join(lines))
