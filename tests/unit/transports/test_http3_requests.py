"""Every endpoint of the HTTP port over HTTP/3, and ``Alt-Svc`` on TCP, as Centrifugo v6.9.1 does
with ``http_server.http3`` (https://centrifugal.dev/docs/server/configuration#http_serverhttp3).

Centrifugo's HTTP/3 server runs the same handler as its TCP server; its TCP responses carry
``Alt-Svc: h3=":<port>"; ma=2592000`` unless WebTransport is on (its WebTransport server leaves the
HTTP/3 server without a listener of its own, so quic-go has no port to announce), and a WebSocket
upgrade never carries it. Checked against Centrifugo v6.9.1 with curl.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
import orjson
import pytest
from helpers.certs import self_signed
from helpers.env import free_port
from helpers.webtransport import (
    API_KEY,
    SECRET,
    parse_webtransport_config,
    webtransport_config,
    webtransport_server,
    wt_connect,
)

from rotary.server.app import build_server, serve

API = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


def _config(port: int, webtransport: bool = True, **overrides: Any) -> dict[str, Any]:
    return webtransport_config(
        port,
        self_signed(),
        webtransport={"enabled": webtransport},
        sse={"enabled": True},
        health={"enabled": True},
        **overrides,
    )


async def test_api_publish_reaches_a_webtransport_subscriber(tmp_path: Path) -> None:
    port = free_port()
    async with webtransport_server(tmp_path, port, _config(port)), wt_connect(port) as connection:
        session = await connection.session()
        await session.connect("alice")
        assert "error" not in await session.command(subscribe={"channel": "news"})
        body = orjson.dumps({"channel": "news", "data": {"text": "over h3"}})
        response = await connection.fetch("POST", "/api/publish", body, API)
        assert response.status == 200
        assert orjson.loads(await response.read()) == {"result": {}}
        assert (await session.push("pub"))["pub"]["data"] == {"text": "over h3"}
        unauthorized = await connection.fetch("POST", "/api/publish", body)
        assert unauthorized.status == 401


async def test_sse_stream_with_emulation_over_http3(tmp_path: Path) -> None:
    """The bidirectional SSE stream, its commands through POST /emulation and the publication from
    the API: all three on HTTP/3 streams of one QUIC connection."""
    port = free_port()
    async with webtransport_server(tmp_path, port, _config(port)), wt_connect(port) as connection:
        token = jwt.encode({"sub": "bob"}, SECRET, algorithm="HS256")
        connect = orjson.dumps({"id": 1, "connect": {"token": token}}).decode()
        stream = await connection.fetch("GET", "/connection/sse?cf_connect=" + quote(connect))
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "transfer-encoding" not in stream.headers and "connection" not in stream.headers
        received = await stream.until(b"\n\n")
        reply = orjson.loads(received.split(b"data: ", 1)[1].split(b"\n", 1)[0])
        session, node = reply["connect"]["session"], reply["connect"]["node"]
        command = orjson.dumps({"id": 2, "subscribe": {"channel": "news"}})
        emulation = orjson.dumps({"session": session, "node": node, "data": command.decode()})
        posted = await connection.fetch("POST", "/emulation", emulation, {"Content-Type": "application/json"})
        assert posted.status == 204
        await posted.read()
        await stream.until(b'"id":2')
        body = orjson.dumps({"channel": "news", "data": {"n": 1}})
        assert (await connection.fetch("POST", "/api/publish", body, API)).status == 200
        assert b'{"n":1}' in await stream.until(b'"pub"')


async def test_oversized_body_unknown_path_and_health(tmp_path: Path) -> None:
    port = free_port()
    async with webtransport_server(tmp_path, port, _config(port)), wt_connect(port) as connection:
        limit = 65536  # emulation.max_request_body_size's default, as Centrifugo's
        oversized = await connection.fetch("POST", "/emulation", b" " * (limit + 1))
        assert oversized.status == 413
        await oversized.read()
        missing = await connection.fetch("GET", "/no/such/path")
        assert missing.status == 404
        assert await missing.read() == b"404 page not found\n"
        health = await connection.fetch("GET", "/health")
        assert (health.status, await health.read()) == (200, b"{}")
        assert "alt-svc" not in health.headers, "HTTP/3 responses never carry Alt-Svc"


async def test_a_stopped_request_stream_leaves_the_server_serving(tmp_path: Path) -> None:
    port = free_port()
    async with webtransport_server(tmp_path, port, _config(port)) as server, wt_connect(port) as connection:
        token = jwt.encode({"sub": "carol"}, SECRET, algorithm="HS256")
        connect = orjson.dumps({"id": 1, "connect": {"token": token}}).decode()
        stream = await connection.fetch("GET", "/connection/sse?cf_connect=" + quote(connect))
        await stream.until(b"\n\n")
        assert len(server.rotary.node.hub.clients) == 1
        connection.client.quic.stop_stream(stream.stream_id, 0x10C)  # the client stops reading
        connection.client.transmit()
        async with asyncio.timeout(10):
            while server.rotary.node.hub.clients:
                await asyncio.sleep(0.01)
        health = await connection.fetch("GET", "/health")
        assert health.status == 200


@pytest.mark.parametrize("webtransport", [False, True])
async def test_serve_over_http3_and_alt_svc_on_tcp(
    tmp_path: Path, webtransport: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole ``serve`` with TLS: the routes answer over HTTP/3, and TCP responses advertise it
    exactly when Centrifugo does (not with WebTransport on, never on a WebSocket upgrade). An SSE
    stream open over HTTP/3 at shutdown gets its 3001 and ends, with nothing logged as an error."""
    port = free_port()
    raw = _config(port, webtransport=webtransport)
    config = parse_webtransport_config(tmp_path, raw)
    stop = asyncio.Event()
    running = asyncio.create_task(serve(build_server(config), stop))
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    async with wt_connect(port) as probe:
                        await probe.fetch("GET", "/health")
                    break
                except (ConnectionError, TimeoutError):
                    await asyncio.sleep(0.05)
        async with wt_connect(port) as connection:
            health = await connection.fetch("GET", "/health")
            assert (health.status, await health.read()) == (200, b"{}")
            if not webtransport:
                refused = await connection.fetch("CONNECT", "/connection/webtransport")
                assert refused.status == 404
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            async with http.get(f"https://127.0.0.1:{port}/health") as response:
                assert response.status == 200
                alt_svc = response.headers.getall("Alt-Svc", [])
            async with http.get(f"https://127.0.0.1:{port}/nothing") as response:
                assert response.status == 404
                assert response.headers.getall("Alt-Svc", []) == alt_svc
            async with http.ws_connect(f"wss://127.0.0.1:{port}/connection/websocket") as ws:
                assert ws._response.headers.getall("Alt-Svc", []) == []
        assert alt_svc == ([] if webtransport else [f'h3=":{port}"; ma=2592000'])
        async with wt_connect(port) as connection:
            token = jwt.encode({"sub": "dave"}, SECRET, algorithm="HS256")
            connect = orjson.dumps({"id": 1, "connect": {"token": token}}).decode()
            stream = await connection.fetch("GET", "/connection/sse?cf_connect=" + quote(connect))
            await stream.until(b"\n\n")
            stop.set()
            assert b'"code":3001' in await stream.read()
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await running
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
