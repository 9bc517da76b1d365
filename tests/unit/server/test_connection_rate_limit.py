"""``client.connection_rate_limit`` through real sockets: a bucket of that many connection requests,
refilled by one per second (Centrifugo's ``rate.NewLimiter(rate.Every(time.Second), limit)``), and
HTTP 503 for a request that finds it empty, before any other check.
See https://centrifugal.dev/docs/server/configuration#clientconnection_rate_limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from helpers.server import InProcessServer, start_in_process

from rotary.server.config.schema import ClientConfig, Config, HealthConfig, TokenConfig

SECRET = "rate-limit-tests-hmac-secret-key-of-32-bytes"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def server(clock: ManualClock) -> AsyncIterator[InProcessServer]:
    config = Config(
        client=ClientConfig(token=TokenConfig(hmac_secret_key=SECRET), connection_rate_limit=3),
        health=HealthConfig(enabled=True),
    )
    started = await start_in_process(config, clock=clock)
    yield started
    await started.close()


async def upgrade_status(server: InProcessServer) -> int:
    """The status of one WebSocket handshake; 101 when the connection opens."""
    try:
        ws = await server.http.ws_connect(server.config.websocket.handler_prefix)
    except aiohttp.WSServerHandshakeError as refused:
        return refused.status
    await ws.close()
    return 101


async def test_burst_then_one_per_second(server: InProcessServer, clock: ManualClock) -> None:
    assert [await upgrade_status(server) for _ in range(4)] == [101, 101, 101, 503]
    clock.now += 0.5
    assert await upgrade_status(server) == 503
    clock.now += 0.5
    assert [await upgrade_status(server) for _ in range(2)] == [101, 503]
    clock.now += 60  # the bucket never holds more than the limit
    assert [await upgrade_status(server) for _ in range(4)] == [101, 101, 101, 503]


async def test_other_endpoints_are_not_limited(server: InProcessServer) -> None:
    for _ in range(3):
        await upgrade_status(server)
    for _ in range(5):
        response = await server.http.get(server.config.health.handler_prefix)
        assert response.status == 200
