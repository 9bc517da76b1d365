"""centrifuge-js in headless Chromium over the `webtransport` transport, JSON and Protobuf builds.

rotary serves WebTransport over HTTP/3 with a fresh self-signed ECDSA P-256 certificate valid for
ten days, which Chromium accepts without a CA when the page pins its SHA-256 through
``serverCertificateHashes`` (webtransport.html adds it, since centrifuge-js passes no options).
The page connects, subscribes, shows a publication sent through the HTTP API, and an API disconnect
with a no-reconnect code reaches the SDK through the disconnect push
(https://centrifugal.dev/docs/transports/webtransport).

The server runs in process: until TLS on the TCP server is built, config validation refuses the
``http_server.tls`` that HTTP/3 needs (see tests/helpers/webtransport.py).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import jwt
import pytest
from aiohttp import web
from helpers.certs import self_signed
from helpers.env import free_port
from helpers.sites import serving_aiohttp
from helpers.webtransport import SECRET, webtransport_config, webtransport_server
from test_browser_quickstart import CENTRIFUGE_JS, browser_ready, open_page

__all__ = ["browser_ready"]  # the fixture, shared with the quickstart tests

pytestmark = [pytest.mark.compat, pytest.mark.browser]

HERE = Path(__file__).parent
BUILDS = {"json": CENTRIFUGE_JS, "protobuf": CENTRIFUGE_JS.with_name("centrifuge.protobuf.js")}


@contextlib.asynccontextmanager
async def page_site(port: int, script: Path) -> AsyncIterator[None]:
    """webtransport.html and one centrifuge-js build, from an origin of their own."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=(HERE / "webtransport.html").read_text(), content_type="text/html")

    async def centrifuge(request: web.Request) -> web.FileResponse:
        return web.FileResponse(script)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/centrifuge.js", centrifuge)
    async with serving_aiohttp(app, port):
        yield


@pytest.mark.usefixtures("browser_ready")
@pytest.mark.parametrize("protocol", ["json", "protobuf"])
async def test_centrifuge_js_over_webtransport(tmp_path: Path, protocol: str) -> None:
    port, page_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{page_port}"
    certificate = self_signed(days=10)
    config = webtransport_config(port, certificate, client={"allowed_origins": [origin]})
    token = jwt.encode({"sub": "browser"}, SECRET, algorithm="HS256")
    query = urlencode(
        {
            "endpoint": f"https://127.0.0.1:{port}/connection/webtransport",
            "token": token,
            "hash": json.dumps(list(certificate.sha256)),
            "protocol": protocol,
        }
    )
    async with (
        webtransport_server(tmp_path, port, config) as server,
        page_site(page_port, BUILDS[protocol]),
        open_page(f"{origin}/?{query}", tmp_path / "profile", quic=True) as page,
    ):
        connected = await page.wait_event("client", "connected")
        assert connected["ok"], connected
        assert connected["events"][0] == {
            "source": "client",
            "name": "connected",
            "transport": "webtransport",
        }
        assert (await page.wait_event("sub", "subscribed"))["ok"]
        status, body = await server.rotary.call("publish", {"channel": "news", "data": {"value": 7}})
        assert status == 200, body
        shown = await page.ask(wait_text='{"value":7}')
        assert shown["ok"], shown
        status, body = await server.rotary.call(
            "disconnect", {"user": "browser", "disconnect": {"code": 4501, "reason": "go away"}}
        )
        assert status == 200, body
        ended = await page.wait_event("client", "disconnected")
        assert ended["ok"], ended
    disconnected = next(e for e in ended["events"] if e["name"] == "disconnected")
    assert (disconnected["code"], disconnected["reason"]) == (4501, "go away")
