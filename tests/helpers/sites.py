"""Serving a test's own aiohttp app (a page site, a host application) on a port for a while."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serving_aiohttp(app: web.Application, port: int) -> AsyncIterator[None]:
    """``app`` on 127.0.0.1:``port`` for the duration of the block, without access logs."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()
