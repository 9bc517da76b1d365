"""The examples (examples/chat, examples/dashboard) started as their READMEs say, with one command
each, and used in headless Chromium as a person would: typing into their pages.

Chat: two people log in through the FastAPI application's own form and see each other in the room
(presence), each sees the other's message, a third one arriving later finds both messages (history),
and a page whose connection dropped for real (a relay between it and the server cuts every TCP
connection) gets the message sent meanwhile through recovery. Dashboard: the page receives the
samples the aiohttp application publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from helpers.env import free_port
from helpers.mount_hosts import Relay
from test_browser_quickstart import Page, browser_ready, open_page, stop, wait_for_port

__all__ = ["browser_ready"]  # the fixture, shared with the quickstart tests

pytestmark = [pytest.mark.compat, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[3]
WAIT_MS = 20000
"""How long a page may take to show something: generous, the machine may be loaded."""
STARTUP_TIMEOUT = 120.0
"""Importing FastAPI and pydantic alone takes 20 s of wall time on a loaded two-core machine."""


@contextlib.asynccontextmanager
async def example(module: str, port: int, log_path: Path, *args: str) -> AsyncIterator[Path]:
    """``python -m <module> --port <port>`` from the repository root, as the README says."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            "--port",
            str(port),
            *args,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_for_port(port, process, log_path, STARTUP_TIMEOUT)
            yield log_path
        finally:
            await stop(process)


async def done(page: Page, **request: Any) -> dict[str, Any]:
    answer = await page.ask(**request)
    assert answer["ok"], answer
    return answer


def texts(selector: str) -> str:
    """A JS expression: the text of every element matching ``selector``, as JSON."""
    return f"JSON.stringify([...document.querySelectorAll({selector!r})].map((e) => e.textContent))"


async def wait_texts(page: Page, selector: str, expected: list[str]) -> None:
    wanted = json.dumps(json.dumps(expected, separators=(",", ":")))
    answer = await page.ask(wait_function=f"{texts(selector)} === {wanted}", timeout=WAIT_MS)
    if not answer["ok"]:
        shown = (await page.ask(evaluate=texts(selector)))["value"]
        pytest.fail(f"{selector} shows {shown}, not {expected}: {answer}")


async def log_in(page: Page, name: str) -> None:
    await done(page, wait_function="getComputedStyle(document.getElementById('login')).display !== 'none'")
    await done(page, fill=["#name", name])
    await done(page, click="#enter")
    await done(
        page, wait_function="document.getElementById('state').textContent === 'connected'", timeout=WAIT_MS
    )


async def say(page: Page, text: str) -> None:
    await done(page, fill=["#text", text])
    await done(page, click="#send")


@pytest.mark.usefixtures("browser_ready")
async def test_two_pages_chat_see_each_other_and_a_newcomer_reads_the_history(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    async with example("examples.chat", port, tmp_path / "chat.log") as log_path:
        async with open_page(url, tmp_path / "anna") as anna, open_page(url, tmp_path / "bob") as bob:
            await log_in(anna, "anna")
            await log_in(bob, "bob")
            for page in (anna, bob):
                await wait_texts(page, "#presence li", ["anna", "bob"])
            await say(anna, "hello bob")
            await wait_texts(bob, "#messages li", ["anna: hello bob"])
            await say(bob, "hi anna")
            await wait_texts(anna, "#messages li", ["anna: hello bob", "bob: hi anna"])
            await wait_texts(bob, "#messages li", ["anna: hello bob", "bob: hi anna"])

        async with open_page(url, tmp_path / "carol") as carol:
            await log_in(carol, "carol")
            await wait_texts(carol, "#messages li", ["anna: hello bob", "bob: hi anna"])
            await wait_texts(carol, "#presence li", ["carol"])
    assert "Traceback" not in log_path.read_text()


@pytest.mark.usefixtures("browser_ready")
async def test_a_chat_page_back_from_a_dropped_connection_recovers_what_it_missed(tmp_path: Path) -> None:
    port = free_port()
    async with example("examples.chat", port, tmp_path / "chat.log"):
        relay = Relay(port)
        await relay.start()
        try:
            async with (
                open_page(f"http://127.0.0.1:{relay.port}/", tmp_path / "anna") as anna,
                open_page(f"http://127.0.0.1:{port}/", tmp_path / "bob") as bob,
            ):
                await log_in(anna, "anna")
                await log_in(bob, "bob")
                await wait_texts(bob, "#presence li", ["anna", "bob"])

                relay.cut(hold=True)
                await wait_texts(bob, "#presence li", ["bob"])  # the server saw anna's connection end
                await say(bob, "while you were away")
                await wait_texts(bob, "#messages li", ["bob: while you were away"])
                relay.release()

                recovered = (
                    "document.getElementById('state').textContent === 'back: missed messages recovered'"
                )
                await done(anna, wait_function=recovered, timeout=WAIT_MS)
                await wait_texts(anna, "#messages li", ["bob: while you were away"])
                await wait_texts(anna, "#presence li", ["anna", "bob"])
        finally:
            await relay.stop()


@pytest.mark.usefixtures("browser_ready")
async def test_the_dashboard_page_receives_the_published_samples(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    async with (
        example("examples.dashboard", port, tmp_path / "dashboard.log", "--interval", "0.2") as log_path,
        open_page(url, tmp_path / "viewer") as viewer,
    ):
        await done(
            viewer,
            wait_function="Number(document.getElementById('samples').textContent) >= 5",
            timeout=WAIT_MS,
        )
        await done(
            viewer, wait_function="document.getElementById('clients').textContent === '1'", timeout=WAIT_MS
        )
        shown = await done(viewer, evaluate="document.getElementById('cpu').textContent")
        assert float(shown["value"]) >= 0
        async with open_page(url, tmp_path / "second") as second:
            # The second page starts from the kept samples, then both count two viewers.
            await done(second, wait_function="Number(document.getElementById('samples').textContent) >= 5")
            for page in (viewer, second):
                await done(
                    page,
                    wait_function="document.getElementById('clients').textContent === '2'",
                    timeout=WAIT_MS,
                )
    assert "Traceback" not in log_path.read_text()
