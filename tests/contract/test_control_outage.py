"""A node's periodic node-info announcement while Redis is away: the expected failure of a backing
service is a rate-limited WARNING without a traceback (engines/outage.py), not an ERROR per tick.
See https://centrifugal.dev/docs/server/engines.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from helpers import redis_servers

from rotary.engines.redis import RedisController
from rotary.node.control import ControlPlane
from rotary.protocol._pb import control_pb2 as cpb


async def test_announcements_while_redis_is_away_warn_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    setup = redis_servers.start_standalone()
    tasks: set[asyncio.Task[None]] = set()
    try:
        options = redis_servers.options_for(setup, redis_servers.unique_prefix(), io_timeout=0.5)
        plane = ControlPlane(
            "node-a",
            RedisController("node-a", options),
            local_info=lambda: cpb.NodeInfo(uid="node-a", name="a"),
            on_command=lambda command: None,
            surveys={},
            spawn=lambda coroutine: tasks.add(asyncio.ensure_future(coroutine)),
            info_interval=0.05,
        )
        await plane.start()
        caplog.set_level(logging.WARNING)
        setup.processes[0].kill()
        async with asyncio.timeout(30):  # one failed announcement is enough; a loaded CPU may be slow
            while not any("node info announcement" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.05)
        await plane.close()
    finally:
        setup.stop()
    failures = [r for r in caplog.records if "announc" in r.getMessage()]
    assert failures and all(r.levelno == logging.WARNING and r.exc_info is None for r in failures)
