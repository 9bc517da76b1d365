"""The quickstart tutorial as a newcomer does it, with rotary in place of centrifugo and headless
Chromium in place of a person: https://centrifugal.dev/docs/getting-started/quickstart.

`rotary genconfig`, the three config edits the tutorial asks for, `rotary gentoken -u 123722`,
`rotary -c config.json`, the tutorial's index.html (centrifuge-js from node_modules rather than a CDN)
served from a second port, then a publication through the HTTP API must show up in the page. A page
served from an origin the config does not allow must not connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers.env import IN_CI, free_port, require_binary
from helpers.server import START_TIMEOUT
from helpers.sites import serving_aiohttp

pytestmark = [pytest.mark.compat, pytest.mark.browser]

HERE = Path(__file__).parent
REPO = HERE.parents[2]
CENTRIFUGE_JS = REPO / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"
ROTARY = Path(sys.executable).parent / "rotary"
JWT = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]+$", re.MULTILINE)
STARTUP_TIMEOUT = START_TIMEOUT
"""An upper bound, not a margin (the wait ends once rotary listens): with the suite in several
processes on a loaded 2-core machine, a start has taken more than 15 s."""


@dataclass(frozen=True, slots=True)
class Quickstart:
    """A directory set up by following the tutorial's steps 1-3."""

    directory: Path
    token: str
    api_key: str
    admin_password: str


def follow_steps_1_to_3(directory: Path, allowed_origin: str) -> Quickstart:
    """genconfig, the tutorial's three config edits (the admin UI on, the page's origin, subscribe
    permission), and gentoken."""
    directory.mkdir()
    rotary("genconfig", cwd=directory)
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["admin"]["enabled"] = True
    config["client"]["allowed_origins"] = [allowed_origin]
    config["channel"] = {"without_namespace": {"allow_subscribe_for_client": True}}
    config_path.write_text(json.dumps(config, indent=2))
    output = rotary("gentoken", "-u", "123722", cwd=directory)
    assert 'HMAC SHA-256 JWT for user "123722"' in output
    token = JWT.search(output)
    assert token is not None, output
    return Quickstart(directory, token.group(), config["http_api"]["key"], config["admin"]["password"])


def rotary(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(ROTARY), *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"rotary {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


@contextlib.asynccontextmanager
async def rotary_server(quickstart: Quickstart, port: int) -> AsyncIterator[Path]:
    """Step 5: `rotary -c config.json` on ``port``; yields the path of its log."""
    log_path = quickstart.directory / "rotary.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(ROTARY),
            "-c",
            "config.json",
            "--http_server.port",
            str(port),
            cwd=quickstart.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_for_port(port, process, log_path)
            yield log_path
        finally:
            await stop(process)


async def wait_for_port(
    port: int, process: asyncio.subprocess.Process, log_path: Path, timeout: float = STARTUP_TIMEOUT
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert process.returncode is None, f"rotary exited:\n{log_path.read_text()}"
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"rotary did not listen on {port} within {timeout}s:\n{log_path.read_text()}")


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def static_site(port: int, index_html: str) -> AsyncIterator[None]:
    """The tutorial's `python3 -m http.server`: index.html and centrifuge-js, nothing else."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=index_html, content_type="text/html")

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(CENTRIFUGE_JS)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/centrifuge.js", script)
    async with serving_aiohttp(app, port):
        yield


def index_html(quickstart: Quickstart, server_port: int) -> str:
    template = (HERE / "index.html").read_text()
    return template.replace("{{WS_URL}}", f"ws://127.0.0.1:{server_port}/connection/websocket").replace(
        "{{TOKEN}}", quickstart.token
    )


class Page:
    """A page open in headless Chromium, through drive_page.mjs and its one-line JSON requests."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    async def ask(self, **request: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        await self._process.stdin.drain()
        return await self.answer()

    async def answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        assert line, "the browser driver exited; its stderr is in the captured output"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def wait_event(self, source: str, name: str, timeout_ms: int = 10000) -> dict[str, Any]:
        return await self.ask(wait_event=[source, name], timeout=timeout_ms)


@contextlib.asynccontextmanager
async def open_page(
    url: str, profile: Path, quic: bool = False, flags: tuple[str, ...] = ()
) -> AsyncIterator[Page]:
    """``quic`` lets Chromium speak QUIC (WebTransport, HTTP/3), with Chromium ``flags``; other
    tests keep it off."""
    profile.mkdir()
    process = await asyncio.create_subprocess_exec(
        require_binary("node"),
        str(HERE / "drive_page.mjs"),
        url,
        str(profile),
        *(["quic", *flags] if quic else []),
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    page = Page(process)
    try:
        opened = await page.answer()
        assert opened["ok"], opened
        yield page
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def publish(server_port: int, api_key: str, data: dict[str, Any]) -> dict[str, Any]:
    """Step 6, the curl command."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{server_port}/api/publish",
            headers={"X-API-Key": api_key},
            json={"channel": "channel", "data": data},
        ) as response,
    ):
        body = await response.text()
        assert response.status == 200, body
        reply: dict[str, Any] = json.loads(body)
        return reply


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


@pytest.fixture
def browser_ready() -> None:
    require_binary("chromium")
    require_binary("node")
    if not CENTRIFUGE_JS.exists():
        message = f"{CENTRIFUGE_JS} is missing: run `npm ci` in the repository root"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.usefixtures("browser_ready")
async def test_page_shows_publication_sent_through_the_api(tmp_path: Path) -> None:
    page_port, server_port = two_free_ports()
    origin = f"http://127.0.0.1:{page_port}"
    quickstart = follow_steps_1_to_3(tmp_path / "app", allowed_origin=origin)
    async with (
        rotary_server(quickstart, server_port) as log_path,
        static_site(page_port, index_html(quickstart, server_port)),
        open_page(f"{origin}/", tmp_path / "profile") as page,
    ):
        subscribed = await page.wait_event("subscription", "subscribed")
        assert subscribed["ok"], (subscribed, log_path.read_text())
        assert subscribed["counter"] == "-"

        reply = await publish(server_port, quickstart.api_key, {"value": 2})
        assert "result" in reply and "error" not in reply, reply
        shown = await page.ask(wait_text="2")
        assert shown["ok"], (shown, log_path.read_text())
        await page.ask(screenshot=str(tmp_path / "quickstart.png"))

    names = [(e["source"], e["name"]) for e in shown["events"]]
    assert names[:4] == [
        ("client", "connecting"),
        ("subscription", "subscribing"),
        ("client", "connected"),
        ("subscription", "subscribed"),
    ]
    assert shown["events"][2]["transport"] == "websocket"
    assert shown["events"][-1]["data"] == {"value": 2}
    assert ("client", "disconnected") not in names
    assert (tmp_path / "quickstart.png").stat().st_size > 0


@pytest.mark.usefixtures("browser_ready")
async def test_page_from_another_origin_is_refused(tmp_path: Path) -> None:
    page_port, server_port = two_free_ports()
    quickstart = follow_steps_1_to_3(tmp_path / "app", allowed_origin=f"http://127.0.0.1:{page_port}")
    foreign_origin = f"http://localhost:{page_port}"
    async with (
        rotary_server(quickstart, server_port) as log_path,
        static_site(page_port, index_html(quickstart, server_port)),
        open_page(f"{foreign_origin}/", tmp_path / "profile") as page,
    ):
        failed = await page.wait_event("client", "error")
        assert failed["ok"], (failed, log_path.read_text())
        await page.ask(screenshot=str(tmp_path / "refused.png"))

    error = next(e for e in failed["events"] if e["name"] == "error")
    assert error["type"] == "transport"
    names = {(e["source"], e["name"]) for e in failed["events"]}
    assert ("client", "connected") not in names
    assert ("subscription", "subscribed") not in names
    log = log_path.read_text()
    refusals = [line for line in log.splitlines() if "request Origin is not authorized" in line]
    assert any(foreign_origin in line for line in refusals), log
