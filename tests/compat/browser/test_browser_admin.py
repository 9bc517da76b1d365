"""rotary's admin web UI in headless Chromium, against a real rotary process and a real SDK client.

A person's visit: a wrong password is refused, the right one opens the status view; a
centrifuge-python client connects and the node's client count shown changes; a publication made
in the UI reaches that client and shows in the UI's history and presence; the UI unsubscribes
and then disconnects the user, and the count falls back. Screenshots of every view, at a laptop's
and a phone's size, are saved to ``artifacts/admin-ui/`` (git-ignored), printed by the test, for a
person to look at.
See https://centrifugal.dev/docs/server/admin_web.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import centrifuge
import pytest
from centrifuge import ClientState
from conftest import RotaryServer, SdkFactory, sign_token
from helpers import redis_servers
from helpers.cluster import redis_config, rotary_nodes
from helpers.cluster import token as cluster_token
from helpers.env import require_binary
from test_browser_quickstart import (
    REPO,
    browser_ready,  # noqa: F401 (a fixture, used by name)
    follow_steps_1_to_3,
    index_html,
    open_page,
    rotary_server,
    static_site,
    two_free_ports,
)

pytestmark = [pytest.mark.compat, pytest.mark.browser]

HERE = Path(__file__).parent
SCREENSHOTS = REPO / "artifacts" / "admin-ui"
PASSWORD = "browser-admin-password"
SECRET = "browser-admin-secret"
REFRESH_WAIT_MS = 30000
"""How long the UI may take to show new node stats (it polls `info` every 3 s)."""

VIEWPORTS = {"laptop": (1280, 800), "phone": (390, 844)}
ADMIN = {"admin": {"enabled": True, "password": PASSWORD, "secret": SECRET}}


class AdminPage:
    """The admin UI open in headless Chromium, driven through drive_admin.mjs."""

    def __init__(self, process: asyncio.subprocess.Process, base_url: str) -> None:
        self._process = process
        self.base_url = base_url

    async def ask(self, **request: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        await self._process.stdin.drain()
        line = await asyncio.wait_for(self._process.stdout.readline(), 90)
        assert line, "the browser driver exited; its stderr is in the captured output"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def do(self, **request: Any) -> str:
        """Runs a request that must succeed; the text it returns, if any."""
        answer = await self.ask(**request)
        assert answer["ok"], (request, answer)
        return str(answer.get("text", ""))

    async def view(self, name: str) -> None:
        await self.do(goto=f"{self.base_url}#/{name}")
        await self.do(wait_text=["nav a[aria-current]", name.split("?")[0].capitalize()])

    async def shoot(self, name: str) -> None:
        for size, (width, height) in VIEWPORTS.items():
            await self.do(viewport=[width, height])
            await self.do(screenshot=str(SCREENSHOTS / f"{name}-{size}.png"))
        await self.do(viewport=list(VIEWPORTS["laptop"]))


@contextlib.asynccontextmanager
async def open_admin(url: str) -> AsyncIterator[AdminPage]:
    process = await asyncio.create_subprocess_exec(
        require_binary("node"),
        str(HERE / "drive_admin.mjs"),
        url,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    page = AdminPage(process, url)
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60) if process.stdout else b""
        assert json.loads(line or b"{}").get("ok"), line
        yield page
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def total(page: AdminPage, stat: str) -> str:
    return await page.do(text=f"[data-totals] [data-stat={stat}] .value")


@pytest.fixture
def admin_server(start_rotary: Callable[[dict[str, Any]], RotaryServer]) -> RotaryServer:
    return start_rotary(ADMIN)


@pytest.mark.usefixtures("browser_ready")
async def test_a_person_runs_the_cluster_from_the_admin_ui(
    admin_server: RotaryServer, sdk_clients: SdkFactory
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"admin UI screenshots: {SCREENSHOTS}")
    async with open_admin(f"{admin_server.http_url}/") as page:
        await page.do(wait_text=["h2", "Admin login"])
        await page.shoot("login")
        await page.do(fill=["input[name=password]", "not the password"])
        await page.do(click="[data-form=login] button[type=submit]")
        await page.do(wait_text=[".notice.error", "Wrong password."])
        await page.shoot("login-refused")

        await page.do(fill=["input[name=password]", PASSWORD])
        await page.do(click="[data-form=login] button[type=submit]")
        await page.do(wait_text=["nav a[aria-current]", "Status"])
        await page.do(wait_text=["[data-stat=nodes] .value", "1"])
        assert await total(page, "clients") == "0"

        sdk = sdk_clients(admin_server, token=sign_token({"sub": "alice"}))
        await sdk.client.connect()
        await sdk.client.ready(timeout=5)
        sub, events = sdk.subscription("chat:room")
        await sub.subscribe()
        await sub.ready(timeout=5)
        await page.do(wait_text=["[data-totals] [data-stat=clients] .value", "1"], timeout=REFRESH_WAIT_MS)
        await page.do(wait_text=["[data-totals] [data-stat=subs] .value", "1"], timeout=REFRESH_WAIT_MS)
        await page.shoot("status")

        await page.view("publish")
        await page.do(fill=["[data-form=publish] input[name=channel]", "chat:room"])
        await page.do(fill=["[data-form=publish] textarea[name=data]", '{"text": "from the admin UI"}'])
        await page.do(click="[data-form=publish] button[type=submit]")
        await page.do(wait_text=["[data-output=publish]", "Published at offset 1"])
        received = await events.next("on_publication")
        assert received.pub.data == {"text": "from the admin UI"}
        await page.do(fill=["[data-form=publish] textarea[name=data]", "{not json"])
        await page.do(click="[data-form=publish] button[type=submit]")
        await page.do(wait_text=["[data-output=publish]", "Data is not valid JSON"])
        await page.shoot("publish")

        await page.view("history?channel=chat:room")
        await page.do(wait_text=["[data-output=history]", "from the admin UI"])
        await page.shoot("history")

        await page.view("presence?channel=chat:room")
        await page.do(wait_text=["[data-output=presence]", "alice"])
        await page.shoot("presence")

        await page.view("channels")
        await page.do(wait_text=["[data-output=channels]", "chat:room"])
        await page.shoot("channels")

        await page.view("users")
        await page.do(fill=["[data-form=connections] input[name=user]", "alice"])
        await page.do(click="[data-form=connections] button[type=submit]")
        await page.do(wait_text=["[data-output=connections]", "chat:room"])
        await page.do(fill=["[data-form=unsubscribe] input[name=user]", "alice"])
        await page.do(fill=["[data-form=unsubscribe] input[name=channel]", "chat:room"])
        await page.do(click="[data-form=unsubscribe] button[type=submit]")
        await page.do(wait_text=["[data-output=unsubscribe]", "Unsubscribed alice from chat:room"])
        await events.next("on_unsubscribed")
        await page.do(fill=["[data-form=disconnect] input[name=user]", "alice"])
        await page.do(click="[data-form=disconnect] button[type=submit]")
        await page.do(wait_text=["[data-output=disconnect]", "Disconnected"])
        await sdk.events.next("on_disconnected")
        assert sdk.client.state is ClientState.DISCONNECTED
        await page.shoot("users")

        await page.view("status")
        await page.do(wait_text=["[data-totals] [data-stat=clients] .value", "0"], timeout=REFRESH_WAIT_MS)

        await page.do(click="button.link")  # log out
        await page.do(wait_text=["h2", "Admin login"])


@pytest.mark.usefixtures("browser_ready")
async def test_the_status_view_shows_every_node_of_a_cluster(tmp_path: Path) -> None:
    """Two nodes on one Redis: the UI of the first lists both, and a client of the second shows up
    in that node's card and in the cluster's totals."""
    redis = redis_servers.start_standalone()
    try:
        config = redis_config(redis.addresses[0], redis_servers.unique_prefix()) | ADMIN
        with rotary_nodes(tmp_path / "cluster", config, 2) as (first, second):
            await _watch_the_cluster(first.http_url, second.ws_url, second.port)
    finally:
        redis.stop()


async def _watch_the_cluster(ui_url: str, client_url: str, client_port: int) -> None:
    async with open_admin(f"{ui_url}/") as page:
        await page.do(fill=["input[name=password]", PASSWORD])
        await page.do(click="[data-form=login] button[type=submit]")
        await page.do(wait_text=["[data-stat=nodes] .value", "2"], timeout=REFRESH_WAIT_MS)
        client = centrifuge.Client(client_url, token=cluster_token("bob"), proxy=None)
        try:
            await client.connect()
            await client.ready(timeout=5)
            await page.do(
                wait_text=["[data-totals] [data-stat=clients] .value", "1"], timeout=REFRESH_WAIT_MS
            )
            card = f"[data-node$='_{client_port}'] [data-stat=clients] .value"
            await page.do(wait_text=[card, "1"], timeout=REFRESH_WAIT_MS)
            await page.shoot("status-cluster")
        finally:
            await client.disconnect()


@pytest.mark.usefixtures("browser_ready")
async def test_the_quickstart_admin_panel_shows_the_connected_page(tmp_path: Path) -> None:
    """The tutorial's last step (https://centrifugal.dev/docs/getting-started/quickstart): with its
    app page connected, http://<server>/ opens the admin panel, the config's admin.password logs
    in, and the panel shows one node with one client."""
    page_port, server_port = two_free_ports()
    origin = f"http://127.0.0.1:{page_port}"
    quickstart = follow_steps_1_to_3(tmp_path / "app", allowed_origin=origin)
    async with (
        rotary_server(quickstart, server_port) as log_path,
        static_site(page_port, index_html(quickstart, server_port)),
        open_page(f"{origin}/", tmp_path / "profile") as app_page,
        open_admin(f"http://127.0.0.1:{server_port}/") as admin,
    ):
        subscribed = await app_page.wait_event("subscription", "subscribed")
        assert subscribed["ok"], (subscribed, log_path.read_text())
        await admin.do(fill=["input[name=password]", quickstart.admin_password])
        await admin.do(click="[data-form=login] button[type=submit]")
        await admin.do(wait_text=["[data-stat=nodes] .value", "1"])
        await admin.do(wait_text=["[data-totals] [data-stat=clients] .value", "1"], timeout=REFRESH_WAIT_MS)
        await admin.shoot("quickstart")
