"""centrifuge-js in headless Chromium, connected to rotary mounted inside a host application.

The page comes from the host itself (same origin, so the mounts' default Origin rule admits it),
logs in through the host's own route, and connects without a token: ``on_connecting`` finds the
host's session in ``ConnectionInfo.request``. Over WebSocket and over the SSE and HTTP-streaming
emulation (the ASGI mount under uvicorn, the aiohttp sub-app), the page publishes, gets the host's
publications, and recovers those sent while a relay between the browser and the host had dropped
every connection. See https://centrifugal.dev/docs/transports/overview and docs/embedding.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from helpers.env import free_port
from helpers.mount_hosts import (
    HISTORY,
    AiohttpSessions,
    HostLoginHooks,
    Relay,
    aiohttp_host,
    scope_user,
    serving_uvicorn,
    starlette_host,
)
from helpers.sites import serving_aiohttp
from test_browser_quickstart import browser_ready, open_page

from rotary.node.node import Node

__all__ = ["browser_ready"]  # the fixture, shared with the quickstart tests

pytestmark = [pytest.mark.compat, pytest.mark.browser]

HERE = Path(__file__).parent
CASES = [
    ("asgi", "websocket"),
    ("asgi", "http_stream"),
    ("asgi", "sse"),
    ("aiohttp", "websocket"),
    ("aiohttp", "sse"),
]


@contextlib.asynccontextmanager
async def mounted(kind: str, page: str) -> AsyncIterator[tuple[Node, HostLoginHooks, int]]:
    """A host of ``kind`` with its node, serving on a free port."""
    port = free_port()
    sessions = AiohttpSessions()
    hooks = HostLoginHooks(scope_user if kind == "asgi" else sessions.user_of)
    node = Node(hooks=hooks)
    await node.start()
    try:
        if kind == "asgi":
            async with serving_uvicorn(starlette_host(node, page), port):
                yield node, hooks, port
        else:
            async with serving_aiohttp(aiohttp_host(node, sessions, page), port):
                yield node, hooks, port
    finally:
        await node.shutdown(5)


@pytest.mark.usefixtures("browser_ready")
@pytest.mark.parametrize(("kind", "transport"), CASES, ids=[f"{k}-{t}" for k, t in CASES])
async def test_page_logs_in_publishes_and_recovers(tmp_path: Path, kind: str, transport: str) -> None:
    page = (HERE / "mount.html").read_text()
    async with mounted(kind, page) as (node, hooks, port):
        relay = Relay(port)
        await relay.start()
        try:
            url = f"http://127.0.0.1:{relay.port}/?transport={transport}&user=alice"
            async with open_page(url, tmp_path / "profile") as browser:
                subscribed = await browser.wait_event("subscription", "subscribed")
                assert subscribed["ok"], subscribed
                connected = [e for e in subscribed["events"] if e["name"] == "connected"]
                assert [e["transport"] for e in connected] == [transport]
                request = hooks.requests[-1]
                if kind == "asgi":
                    assert isinstance(request, dict) and request["session"] == {"user": "alice"}
                else:
                    assert isinstance(request, web.Request) and request.cookies[AiohttpSessions.COOKIE]

                shown = await browser.ask(wait_text="hello from the page")  # its own, through on_publish
                assert shown["ok"], shown
                await node.publish("chat", orjson.dumps({"value": 1}), HISTORY)
                shown = await browser.ask(wait_text="1")
                assert shown["ok"], shown

                relay.cut(hold=True)
                away = await browser.wait_event("client", "reconnecting")
                assert away["ok"], away
                await node.publish("chat", orjson.dumps({"value": 2}), HISTORY)
                await node.publish("chat", orjson.dumps({"value": 3}), HISTORY)
                relay.release()
                back = await browser.wait_event("subscription", "resubscribed", timeout_ms=20000)
                assert back["ok"], back
                resubscribed = [e for e in back["events"] if e["name"] == "resubscribed"]
                assert resubscribed[0]["recovered"] is True, resubscribed
                shown = await browser.ask(wait_text="3")
                assert shown["ok"], shown
                values = [e["data"]["value"] for e in shown["events"] if e["name"] == "publication"]
                assert values == ["hello from the page", 1, 2, 3]
        finally:
            await relay.stop()
