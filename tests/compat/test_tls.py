"""TLS on rotary's HTTP server, driven by centrifuge-python over ``wss://`` and ``cent`` over
``https://``, with a CA each test makes: mutual TLS refuses clients without a certificate, a
TLS port never answers plaintext, and the internal port follows ``tls_external`` and
``internal_tls`` (https://centrifugal.dev/docs/server/tls).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import centrifuge
import pytest
from cent import AsyncClient, PublishRequest
from centrifuge.exceptions import OperationTimeoutError
from conftest import API_KEY, DEFAULT_CONFIG, EventLog, RotaryServer, merged, running_rotary, sign_token
from helpers.certs import TestCA
from helpers.env import free_port

pytestmark = pytest.mark.compat

WAIT = 10.0


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


def tls_section(ca: TestCA, directory: Path, name: str = "server", **extra: Any) -> dict[str, Any]:
    cert, key = ca.issue(name).write(directory, name)
    return {"enabled": True, "cert_pem": str(cert), "key_pem": str(key), **extra}


@contextlib.contextmanager
def tls_rotary(directory: Path, overrides: dict[str, Any]) -> Iterator[RotaryServer]:
    with running_rotary(directory, merged(DEFAULT_CONFIG, overrides)) as server:
        yield server


def wss_url(server: RotaryServer) -> str:
    return f"wss://127.0.0.1:{server.port}/connection/websocket"


def wait_logged(server: RotaryServer, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while text not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


@contextlib.asynccontextmanager
async def sdk(server: RotaryServer, context: ssl.SSLContext, user: str = "tls-user") -> AsyncIterator[Any]:
    events = EventLog()
    client = centrifuge.Client(
        wss_url(server),
        events=events,
        token=sign_token({"sub": user}),
        ssl_context=context,
        proxy=None,
        timeout=5.0,
        max_reconnect_delay=0.5,
    )
    client.test_events = events  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        await client.disconnect()


async def test_sdk_over_wss_and_cent_over_https(ca: TestCA, tmp_path: Path) -> None:
    with tls_rotary(tmp_path / "rotary", {"http_server": {"tls": tls_section(ca, tmp_path)}}) as server:
        assert "with TLS" in server.log()
        context = ca.client_context()
        async with sdk(server, context) as client:
            await client.connect()
            await client.ready(timeout=WAIT)
            events = EventLog()
            sub = client.new_subscription("chat:tls", events=events)
            await sub.subscribe()
            await sub.ready(timeout=WAIT)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
                cent = AsyncClient(f"https://127.0.0.1:{server.port}/api", API_KEY, session=session)
                await cent.publish(PublishRequest(channel="chat:tls", data={"over": "https"}))
            ctx = await events.next("on_publication", timeout=WAIT)
            assert ctx.pub.data == {"over": "https"}


async def test_plaintext_to_tls_port_gets_no_http_answer(ca: TestCA, tmp_path: Path) -> None:
    with tls_rotary(tmp_path / "rotary", {"http_server": {"tls": tls_section(ca, tmp_path)}}) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(WAIT):
            answer = await reader.read()  # until the server closes
        writer.close()
        assert not answer.startswith(b"HTTP/"), answer
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                await session.get(f"http://127.0.0.1:{server.port}/health")


async def test_mutual_tls(ca: TestCA, tmp_path: Path) -> None:
    section = tls_section(ca, tmp_path, client_ca_pem=ca.cert_pem.decode())
    with tls_rotary(tmp_path / "rotary", {"http_server": {"tls": section}}) as server:
        without = ca.client_context()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=without)) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"https://127.0.0.1:{server.port}/health") as response:
                    await response.read()
        async with sdk(server, without) as client:
            await client.connect()
            with pytest.raises(OperationTimeoutError):
                await client.ready(timeout=1.0)  # retries and never gets through
        stranger = TestCA("another CA")
        foreign = ca.client_context(stranger.issue("intruder", client=True), tmp_path / "foreign")
        async with sdk(server, foreign) as client:
            await client.connect()
            with pytest.raises(OperationTimeoutError):
                await client.ready(timeout=1.0)
        with_cert = ca.client_context(ca.issue("client", client=True), tmp_path / "client")
        async with sdk(server, with_cert) as client:
            await client.connect()
            await client.ready(timeout=WAIT)


async def test_internal_port_follows_tls_external_and_internal_tls(ca: TestCA, tmp_path: Path) -> None:
    context = ca.client_context()
    internal = free_port()
    http = {"tls": tls_section(ca, tmp_path), "internal_port": str(internal), "tls_external": True}
    with tls_rotary(tmp_path / "external-only", {"http_server": http, "health": {"enabled": True}}) as server:
        wait_logged(server, f":{internal}")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{internal}/health") as response:
                assert response.status == 200  # tls_external: the internal port stays plaintext
    internal = free_port()
    http = {
        "tls": tls_section(ca, tmp_path),
        "internal_port": str(internal),
        "internal_tls": tls_section(ca, tmp_path / "internal", "internal"),
    }
    with tls_rotary(tmp_path / "own-tls", {"http_server": http, "health": {"enabled": True}}) as server:
        wait_logged(server, f":{internal} with TLS")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            async with session.get(f"https://127.0.0.1:{internal}/health") as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):
                await session.get(f"http://127.0.0.1:{internal}/health")
        _, writer = await asyncio.open_connection("127.0.0.1", internal, ssl=context)
        peer = writer.get_extra_info("peercert")
        writer.close()
        assert ("commonName", "internal") in [item for rdn in peer["subject"] for item in rdn]
