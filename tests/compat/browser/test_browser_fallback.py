"""Headless Chromium falls back to HTTP streaming, or SSE, where WebSocket is blocked.

The quickstart setup (see test_browser_quickstart.py) with WebSocket disabled on the server, as a
proxy that drops upgrades would leave it, and the page's centrifuge-js given a list of transports:
WebSocket first, then the emulated one. The page is served from another origin, so the stream and
every emulation request go through the browser's CORS checks against ``client.allowed_origins``.
See https://centrifugal.dev/docs/transports/http_stream and https://centrifugal.dev/docs/transports/sse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_browser_quickstart import (
    HERE,
    Quickstart,
    browser_ready,  # noqa: F401 (a fixture, used by name)
    follow_steps_1_to_3,
    open_page,
    publish,
    rotary_server,
    static_site,
    two_free_ports,
)

pytestmark = [pytest.mark.compat, pytest.mark.browser]


def blocking_websocket(quickstart: Quickstart) -> None:
    """The config of step 2, with WebSocket off and both emulated transports on."""
    path = quickstart.directory / "config.json"
    config = json.loads(path.read_text())
    config |= {"websocket": {"disabled": True}, "http_stream": {"enabled": True}, "sse": {"enabled": True}}
    path.write_text(json.dumps(config, indent=2))


def fallback_html(quickstart: Quickstart, server_port: int, fallback: str) -> str:
    return (
        (HERE / "fallback.html")
        .read_text()
        .replace("{{WS_URL}}", f"ws://127.0.0.1:{server_port}/connection/websocket")
        .replace("{{HTTP_URL}}", f"http://127.0.0.1:{server_port}")
        .replace("{{FALLBACK}}", fallback)
        .replace("{{TOKEN}}", quickstart.token)
    )


@pytest.mark.usefixtures("browser_ready")
@pytest.mark.parametrize("fallback", ["http_stream", "sse"])
async def test_page_falls_back_to_an_emulated_transport(tmp_path: Path, fallback: str) -> None:
    page_port, server_port = two_free_ports()
    origin = f"http://127.0.0.1:{page_port}"
    quickstart = follow_steps_1_to_3(tmp_path / "app", allowed_origin=origin)
    blocking_websocket(quickstart)
    async with (
        rotary_server(quickstart, server_port) as log_path,
        static_site(page_port, fallback_html(quickstart, server_port, fallback)),
        open_page(f"{origin}/", tmp_path / "profile") as page,
    ):
        subscribed = await page.wait_event("subscription", "subscribed")  # sent through /emulation
        assert subscribed["ok"], (subscribed, log_path.read_text())
        connected = [e for e in subscribed["events"] if e["source"] == "client" and e["name"] == "connected"]
        assert [e["transport"] for e in connected] == [fallback]

        reply = await publish(server_port, quickstart.api_key, {"value": 7})
        assert "result" in reply and "error" not in reply, reply
        shown = await page.ask(wait_text="7")
        assert shown["ok"], (shown, log_path.read_text())
