"""The Django example (examples/django_chat), started with its one command, serves centrifuge-python
through Django's own session: a client logged in through the Django view connects with the
session cookie, subscribes and publishes; a client without it is refused with the example's code.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import centrifuge
import pytest
from conftest import EventLog
from helpers.env import START_LIMIT, free_port
from test_mounts_sdk import clients

__all__ = ["clients"]  # the fixture, shared with the mounts' tests

pytestmark = pytest.mark.compat

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "examples" / "django_chat" / "run.py"
LOGIN_REQUIRED = 4503
STARTUP_TIMEOUT = START_LIMIT


@pytest.fixture
def example(tmp_path: Path) -> Iterator[int]:
    """The example on a free port; yields the port."""
    port = free_port()
    log = (tmp_path / "django_chat.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(RUN)],
        env={**os.environ, "PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def until_listening(port: int, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    pytest.fail(f"the example did not listen within {STARTUP_TIMEOUT}s:\n{log.read_text()}")


async def test_sdk_connects_through_the_django_session(
    example: int, tmp_path: Path, clients: list[centrifuge.Client]
) -> None:
    await until_listening(example, tmp_path / "django_chat.log")
    base = f"http://127.0.0.1:{example}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/login", params={"user": "ada"}) as response:
            assert response.status == 200, await response.text()
            cookie = "; ".join(f"{name}={m.value}" for name, m in response.cookies.items())
        async with session.get(f"{base}/") as response:  # Django still serves its own views
            assert response.status == 200 and "centrifuge.js" in await response.text()
    assert cookie.startswith("sessionid=")
    url = f"ws://127.0.0.1:{example}/rt/connection/websocket"

    events = EventLog()
    client = centrifuge.Client(url, events=events, headers={"Cookie": cookie}, proxy=None)
    clients.append(client)
    await client.connect()
    await client.ready(timeout=10)
    sub_events = EventLog()
    sub = client.new_subscription("chat", events=sub_events)
    await sub.subscribe()
    await sub.ready(timeout=5)
    await sub.publish({"text": "hello"})
    publication = await sub_events.next("on_publication")
    assert publication.pub.data == {"text": "hello"} and publication.pub.info.user == "ada"

    stranger_events = EventLog()
    stranger = centrifuge.Client(url, events=stranger_events, proxy=None)
    clients.append(stranger)
    await stranger.connect()
    disconnected = await stranger_events.next("on_disconnected")
    assert disconnected.code == LOGIN_REQUIRED
