"""Headless Chromium speaking HTTP/3 to rotary: the page, a fetch of the API, an EventSource and a
404, all on the QUIC listener (https://centrifugal.dev/docs/server/configuration#http_serverhttp3).

Chromium is told to use QUIC for the server's origin from the first request
(``--origin-to-force-quic-on``) and to accept the test's self-signed certificate by its public
key's hash (``--ignore-certificate-errors-spki-list``). The in-process server's TCP routes listen
on another port, so nothing here can have gone over TCP; ``nextHopProtocol`` says ``h3`` anyway.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import quote

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers.certs import SelfSigned, self_signed
from helpers.env import free_port
from helpers.webtransport import API_KEY, SECRET, webtransport_config, webtransport_server
from test_browser_quickstart import browser_ready, open_page

__all__ = ["browser_ready"]

pytestmark = [pytest.mark.compat, pytest.mark.browser]


def _spki_hash(certificate: SelfSigned) -> str:
    public_key = x509.load_pem_x509_certificate(certificate.cert_pem.encode()).public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.mark.usefixtures("browser_ready")
async def test_chromium_over_http3(tmp_path: Path) -> None:
    port = free_port()
    origin = f"https://127.0.0.1:{port}"
    certificate = self_signed(days=10)
    config = webtransport_config(
        port,
        certificate,
        sse={"enabled": True},
        health={"enabled": True},
        client={"allowed_origins": [origin]},
    )
    flags = (
        f"--origin-to-force-quic-on=127.0.0.1:{port}",
        f"--ignore-certificate-errors-spki-list={_spki_hash(certificate)}",
    )
    token = jwt.encode({"sub": "browser"}, SECRET, algorithm="HS256")
    connect = quote(json.dumps({"id": 1, "connect": {"token": token}}))
    async with (
        webtransport_server(tmp_path, port, config),
        open_page(f"{origin}/health", tmp_path / "profile", quic=True, flags=flags) as page,
    ):
        navigation = await page.ask(evaluate="performance.getEntriesByType('navigation')[0].nextHopProtocol")
        assert navigation.get("value") == "h3", navigation
        published = await page.ask(
            evaluate=f"""(async () => {{
                const response = await fetch('/api/publish', {{
                    method: 'POST',
                    headers: {{'X-API-Key': '{API_KEY}', 'Content-Type': 'application/json'}},
                    body: JSON.stringify({{channel: 'news', data: {{value: 1}}}}),
                }});
                const body = await response.text();
                const entry = performance.getEntriesByName(response.url).pop();
                return [response.status, body, entry && entry.nextHopProtocol];
            }})()"""
        )
        assert published.get("value") == [200, '{"result":{}}', "h3"], published
        missing = await page.ask(evaluate="fetch('/no/such/path').then((r) => r.status)")
        assert missing.get("value") == 404, missing
        streamed = await page.ask(
            evaluate=f"""new Promise((resolve, reject) => {{
                const source = new EventSource('/connection/sse?cf_connect={connect}');
                source.onmessage = (event) => {{ source.close(); resolve(JSON.parse(event.data)); }};
                source.onerror = () => {{ source.close(); reject(new Error('EventSource failed')); }};
            }})"""
        )
        reply = streamed.get("value") or {}
        assert reply.get("id") == 1 and reply["connect"]["client"], streamed
