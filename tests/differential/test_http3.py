"""HTTP/3 (``http_server.http3``) beside Centrifugo: the same answers over QUIC, and ``Alt-Svc`` on
the TLS responses of the TCP port exactly when Centrifugo sends it (HTTP/3 on and WebTransport off;
never on a WebSocket upgrade). See https://centrifugal.dev/docs/server/configuration#http_serverhttp3.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from helpers.centrifugo import centrifugo_process
from helpers.certs import self_signed
from helpers.server import rotary_process
from helpers.webtransport import wt_connect

from differential.runner import API_KEY, SECRET


def _config(webtransport: bool) -> dict[str, Any]:
    certificate = self_signed()
    return {
        "http_server": {
            "tls": {"enabled": True, "cert_pem": certificate.cert_pem, "key_pem": certificate.key_pem},
            "http3": {"enabled": True},
        },
        "webtransport": {"enabled": webtransport},
        "health": {"enabled": True},
        "http_api": {"key": API_KEY},
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"]},
        "usage_stats": {"disabled": True},
    }


async def _over_tcp(port: int) -> dict[str, Any]:
    """Status and Alt-Svc (the port replaced by PORT) of TLS responses on the TCP port."""
    seen: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
        for path in ("/health", "/no/such/path"):
            async with http.get(f"https://127.0.0.1:{port}{path}") as response:
                values = [v.replace(str(port), "PORT") for v in response.headers.getall("Alt-Svc", [])]
                seen[path] = (response.status, values)
        async with http.ws_connect(f"wss://127.0.0.1:{port}/connection/websocket") as ws:
            seen["websocket"] = ws._response.headers.getall("Alt-Svc", [])
    return seen


async def _over_http3(port: int) -> dict[str, Any]:
    """Status, body and Alt-Svc of requests over HTTP/3."""
    seen: dict[str, Any] = {}
    async with asyncio.timeout(30):
        while True:  # Centrifugo's QUIC listener starts beside its TCP one, maybe a moment later
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with wt_connect(port) as connection:
                    for method, path, body in (
                        ("GET", "/health", b""),
                        ("GET", "/no/such/path", b""),
                        ("POST", "/api/publish", orjson.dumps({"channel": "news", "data": {}})),
                        ("POST", "/api/info", b"{not json"),
                    ):
                        headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
                        response = await connection.fetch(method, path, body, headers)
                        answer = await response.read()
                        if response.status == 400:  # rotary names the fault after it, on purpose
                            answer = answer.split(b":")[0].strip()  # (allowlist.toml, "Bad Request")
                        seen[path] = (response.status, answer, response.headers.get("alt-svc"))
                    return seen
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _both(directory: Path, webtransport: bool) -> AsyncIterator[tuple[int, int]]:
    config = _config(webtransport)
    with (
        centrifugo_process(directory / "centrifugo", config) as centrifugo,
        rotary_process(directory / "rotary", config, "--http_server.address", "127.0.0.1") as rotary,
    ):
        yield centrifugo.port, rotary.port


@pytest.mark.parametrize("webtransport", [False, True])
async def test_alt_svc_on_tcp_as_centrifugo(tmp_path: Path, webtransport: bool) -> None:
    async with _both(tmp_path, webtransport) as (centrifugo, rotary):
        expected = await _over_tcp(centrifugo)
        assert await _over_tcp(rotary) == expected
    assert expected["/health"][1] == ([] if webtransport else ['h3=":PORT"; ma=2592000'])


async def test_the_same_answers_over_http3(tmp_path: Path) -> None:
    """With WebTransport off: with it on, Centrifugo v6.9.1's QUIC handshake fails with aioquic's
    client (its WebTransport server listens with the TLS config as given, seemingly without the h3
    ALPN), so there is nothing to compare; rotary's side of that case is in
    tests/unit/transports/test_http3_requests.py."""
    async with _both(tmp_path, webtransport=False) as (centrifugo, rotary):
        expected = await _over_http3(centrifugo)
        assert await _over_http3(rotary) == expected
    assert expected["/health"][0] == 200 and expected["/no/such/path"][0] == 404
