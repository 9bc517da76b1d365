"""Headless Chromium runs centrifuge-js over sockjs-client against rotary's SockJS endpoint.

centrifuge-js 5.x still accepts a ``sockjs`` transport (deprecated); rotary serves SockJS when
``sockjs.enabled`` is set (rotary's own section: Centrifugo v6 dropped SockJS). The quickstart setup
of test_browser_quickstart.py, with the page served from another origin and sockjs-client limited to
one sub-transport per run: connect, subscribe, a publication through the HTTP API, and a server
disconnect, which sockjs-client reports as its close code and centrifuge-js as its disconnect code.
See https://centrifugal.dev/docs/4/transports/sockjs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from helpers.sites import serving_aiohttp
from test_browser_quickstart import (
    CENTRIFUGE_JS,
    HERE,
    REPO,
    Quickstart,
    browser_ready,  # noqa: F401 (a fixture, used by name)
    follow_steps_1_to_3,
    open_page,
    publish,
    rotary_server,
    two_free_ports,
)

pytestmark = [pytest.mark.compat, pytest.mark.browser]

SOCKJS_JS = REPO / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"


def enable_sockjs(quickstart: Quickstart) -> None:
    path = quickstart.directory / "config.json"
    config = json.loads(path.read_text())
    config |= {"sockjs": {"enabled": True}}
    path.write_text(json.dumps(config, indent=2))


def sockjs_html(quickstart: Quickstart, server_port: int, subtransport: str) -> str:
    return (
        (HERE / "sockjs.html")
        .read_text()
        .replace("{{HTTP_URL}}", f"http://127.0.0.1:{server_port}")
        .replace("{{SUBTRANSPORT}}", subtransport)
        .replace("{{TOKEN}}", quickstart.token)
    )


@contextlib.asynccontextmanager
async def static_site(port: int, index_html: str) -> AsyncIterator[None]:
    """The page, centrifuge-js and sockjs-client, from their own origin."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=index_html, content_type="text/html")

    async def centrifuge(request: web.Request) -> web.FileResponse:
        return web.FileResponse(CENTRIFUGE_JS)

    async def sockjs(request: web.Request) -> web.FileResponse:
        return web.FileResponse(SOCKJS_JS)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/centrifuge.js", centrifuge)
    app.router.add_get("/sockjs.js", sockjs)
    async with serving_aiohttp(app, port):
        yield


async def disconnect_user(server_port: int, api_key: str, user: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{server_port}/api/disconnect",
            headers={"X-API-Key": api_key},
            json={"user": user, "disconnect": {"code": 4500, "reason": "bye"}},
        ) as response,
    ):
        assert response.status == 200


@pytest.mark.usefixtures("browser_ready")
@pytest.mark.parametrize("subtransport", ["websocket", "xhr-streaming", "xhr-polling", "eventsource"])
async def test_centrifuge_js_over_sockjs(tmp_path: Path, subtransport: str) -> None:
    page_port, server_port = two_free_ports()
    origin = f"http://127.0.0.1:{page_port}"
    quickstart = follow_steps_1_to_3(tmp_path / "app", allowed_origin=origin)
    enable_sockjs(quickstart)
    async with (
        rotary_server(quickstart, server_port) as log_path,
        static_site(page_port, sockjs_html(quickstart, server_port, subtransport)),
        open_page(f"{origin}/", tmp_path / "profile") as page,
    ):
        subscribed = await page.wait_event("subscription", "subscribed")
        assert subscribed["ok"], (subscribed, log_path.read_text())
        connected = [e for e in subscribed["events"] if e["source"] == "client" and e["name"] == "connected"]
        assert [e["transport"] for e in connected] == [f"sockjs-{subtransport}"]

        reply = await publish(server_port, quickstart.api_key, {"value": 7})
        assert "result" in reply and "error" not in reply, reply
        shown = await page.ask(wait_text="7")
        assert shown["ok"], (shown, log_path.read_text())

        await disconnect_user(server_port, quickstart.api_key, "123722")
        gone = await page.wait_event("client", "disconnected")
        assert gone["ok"], (gone, log_path.read_text())
        [event] = [e for e in gone["events"] if e["name"] == "disconnected"]
        assert (event["code"], event["reason"]) == (4500, "bye")
