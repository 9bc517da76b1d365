"""The official centrifuge-js SDK in headless Chromium with `websocket.compression` on: Chromium
offers permessage-deflate, rotary answers as Centrifugo does, and large (compressed) and small
(plain, under `compression_min_size`) publications reach the page.
See https://centrifugal.dev/docs/transports/websocket.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import jwt
import pytest
from helpers.env import free_port
from helpers.server import rotary_process
from test_browser_quickstart import browser_ready, open_page, static_site
from test_browser_uni import API_KEY, api

__all__ = ["browser_ready"]  # the fixture, shared with the quickstart tests

pytestmark = [pytest.mark.compat, pytest.mark.browser]

HERE = Path(__file__).parent
SECRET = "browser-compression-tests-hmac-secret-key-32"
ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@pytest.mark.usefixtures("browser_ready")
async def test_chromium_negotiates_compression_with_the_sdk(tmp_path: Path) -> None:
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    config = {
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": [origin]},
        "http_api": {"key": API_KEY},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
        "websocket": {"compression": True, "compression_min_size": 128},
    }
    token = jwt.encode({"sub": "browser"}, SECRET, algorithm="HS256")
    with rotary_process(tmp_path / "rotary", config) as process:
        server = process.http_url
        query = urlencode({"ws": process.ws_url, "token": token})
        async with (
            static_site(page_port, (HERE / "compression.html").read_text()),
            open_page(f"{origin}/?{query}", tmp_path / "profile") as page,
        ):
            subscribed = await page.wait_event("subscription", "subscribed")
            assert subscribed["ok"], (subscribed, process.log())
            opened = next(e for e in subscribed["events"] if e["name"] == "open")
            # Chromium reports the server's answer as it was sent.
            assert opened["data"] == ANSWER
            for n, size in ((1, 60000), (2, 10), (3, 5000)):
                await api(server, "publish", {"channel": "news", "data": {"n": n, "text": "y" * size}})
                shown = await page.ask(wait_text=f"{n}:{size}")
                assert shown["ok"], (shown, process.log())
