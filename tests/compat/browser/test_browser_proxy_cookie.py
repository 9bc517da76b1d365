"""Cookie-based authentication through the connect proxy, from a page in headless Chromium.

The page sets a session cookie and connects with centrifuge-js without a token; the browser sends
the cookie with the WebSocket handshake, rotary forwards it (``http_headers: ["cookie"]``) to a real
HTTP backend, and the backend's user is the one the page sees. A page without the cookie is refused
with the backend's own disconnect code. See https://centrifugal.dev/docs/server/proxy#connect-proxy
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from helpers.env import free_port
from helpers.proxy_backend import ProxyBackend
from helpers.server import rotary_process
from test_browser_quickstart import browser_ready, open_page, static_site

__all__ = ["browser_ready"]  # the fixture, shared with the quickstart tests

pytestmark = [pytest.mark.compat, pytest.mark.browser]

HERE = Path(__file__).parent
SESSIONS = {"s3cr3t-alice": "alice"}


def authenticate(backend: ProxyBackend) -> Any:
    def connect(request: dict[str, Any]) -> dict[str, Any]:
        cookie = SimpleCookie(backend.requests("connect")[-1].headers.get("cookie", ""))
        user = SESSIONS.get(cookie["session"].value) if "session" in cookie else None
        if user is None:
            return {"disconnect": {"code": 4503, "reason": "no session"}}
        return {"result": {"user": user, "data": {"user": user}}}

    return connect


@pytest.mark.usefixtures("browser_ready")
@pytest.mark.parametrize("session", ["s3cr3t-alice", "forged"])
async def test_cookie_session_through_the_connect_proxy(
    tmp_path: Path, backend: ProxyBackend, session: str
) -> None:
    backend.answers["connect"] = authenticate(backend)
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    connect = {
        "enabled": True,
        "endpoint": backend.http_endpoint("connect"),
        "timeout": "3s",
        "http_headers": ["cookie", "origin"],
    }
    config = {"client": {"allowed_origins": [origin], "proxy": {"connect": connect}}}
    with rotary_process(tmp_path / "rotary", config) as process:
        html = (HERE / "proxy_cookie.html").read_text()
        html = html.replace("{{WS_URL}}", f"ws://127.0.0.1:{process.port}/connection/websocket")
        html = html.replace("{{SESSION}}", session)
        async with static_site(page_port, html), open_page(f"{origin}/", tmp_path / "profile") as page:
            if session in SESSIONS:
                shown = await page.ask(wait_text="alice")
                assert shown["ok"], (shown, process.log())
            else:
                ended = await page.wait_event("client", "disconnected")
                assert ended["ok"], (ended, process.log())
                disconnected = [e for e in ended["events"] if e["name"] == "disconnected"]
                assert disconnected[0]["code"] == 4503
    seen = backend.requests("connect")[0]
    assert seen.headers["cookie"] == f"session={session}"
    assert seen.headers["origin"] == origin
    assert seen.body["transport"] == "websocket" and seen.body["protocol"] == "json"
