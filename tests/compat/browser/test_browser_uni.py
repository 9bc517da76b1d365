"""Unidirectional transports from headless Chromium's own EventSource, fetch and WebSocket.

The page (uni.html) is served from another origin than rotary, which allows it in
client.allowed_origins: the SSE and HTTP-stream responses must carry the CORS headers the browser
needs to hand the stream to the page. Each client must see the connect push, a ping, a publication
sent through the HTTP API and, after an API disconnect, the disconnect push.
See https://centrifugal.dev/docs/transports/uni_sse, uni_http_stream and uni_websocket.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import jwt
import pytest
from helpers.env import free_port
from helpers.server import rotary_process
from test_browser_quickstart import browser_ready, open_page, static_site

__all__ = ["browser_ready"]  # the fixture, shared with the quickstart tests

pytestmark = [pytest.mark.compat, pytest.mark.browser]

HERE = Path(__file__).parent
SECRET = "browser-uni-tests-hmac-secret-key-of-32-bytes"
API_KEY = "browser-uni-api-key"


@pytest.mark.usefixtures("browser_ready")
@pytest.mark.parametrize("mode", ["sse", "http_stream", "websocket"])
async def test_native_browser_client(tmp_path: Path, mode: str) -> None:
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    config = {
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "allowed_origins": [origin],
            "ping_interval": "1s",
            "pong_timeout": "500ms",
        },
        "http_api": {"key": API_KEY},
        "uni_sse": {"enabled": True},
        "uni_http_stream": {"enabled": True},
        "uni_websocket": {"enabled": True},
    }
    token = jwt.encode({"sub": "browser", "channels": ["news"]}, SECRET, algorithm="HS256")
    with rotary_process(tmp_path / "rotary", config) as process:
        server = process.http_url
        query = urlencode({"mode": mode, "server": server, "token": token})
        async with (
            static_site(page_port, (HERE / "uni.html").read_text()),
            open_page(f"{origin}/?{query}", tmp_path / "profile") as page,
        ):
            connected = await page.wait_event("push", "connect")
            assert connected["ok"], (connected, process.log())
            assert (await page.wait_event("push", "ping"))["ok"]
            await api(server, "publish", {"channel": "news", "data": {"value": 7}})
            shown = await page.ask(wait_text=json.dumps({"value": 7}, separators=(",", ":")))
            assert shown["ok"], (shown, process.log())
            await api(server, "disconnect", {"user": "browser"})
            ended = await page.wait_event("push", "disconnect")
            assert ended["ok"], (ended, process.log())
    pushes = [e for e in ended["events"] if e["source"] == "push"]
    assert pushes[0]["name"] == "connect"
    assert pushes[0]["push"]["connect"]["subs"] == {"news": {}}
    disconnect = next(e["push"] for e in pushes if e["name"] == "disconnect")
    assert disconnect == {"disconnect": {"code": 3503, "reason": "force disconnect"}}


async def api(server: str, method: str, payload: dict[str, object]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server}/api/{method}", json=payload, headers={"X-API-Key": API_KEY}) as response,
    ):
        assert response.status == 200, await response.text()
