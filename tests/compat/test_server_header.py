"""rotary names no server software in its responses, as Centrifugo (Go's ``net/http``) names none:
every kind of answer, from an API reply to a stream and a WebSocket upgrade, and the 400 to a request
that cannot be parsed, which no app of rotary's sees (rotary.server.connection_handler writes it).

See https://centrifugal.dev/docs/server/configuration#http_server
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from helpers.centrifugo import centrifugo_process

pytestmark = pytest.mark.compat

CONFIG: dict[str, Any] = {
    "health": {"enabled": True},
    "uni_sse": {"enabled": True},
    "http_stream": {"enabled": True},
}
CONNECT = json.dumps({"id": 1, "connect": {}})
WS_KEY = base64.b64encode(b"sixteen byte key").decode()
REQUESTS = {
    "health": "GET /health HTTP/1.1\r\nHost: h\r\n\r\n",
    "unrouted path": "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n",
    "api": "POST /api/info HTTP/1.1\r\nHost: h\r\nX-API-Key: {key}\r\nContent-Length: 2\r\n\r\n{{}}",
    "uni_sse stream": "GET /connection/uni_sse HTTP/1.1\r\nHost: h\r\n\r\n",
    "http_stream": f"POST /connection/http_stream HTTP/1.1\r\nHost: h\r\nContent-Length: {len(CONNECT)}"
    f"\r\n\r\n{CONNECT.replace('{', '{{').replace('}', '}}')}",
    "websocket upgrade": "GET /connection/websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
    f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "malformed request": "GARBAGE\r\n\r\n",
}
"""Raw HTTP/1.1 requests, one per kind of answer (``{key}``: the API key)."""


async def response_head(port: int, request: str) -> tuple[int, set[str]]:
    """The status and the header names (lower case) of the answer to ``request``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    status_line, *lines = head.decode().split("\r\n")
    return int(status_line.split()[1]), {line.split(":", 1)[0].lower() for line in lines if line}


async def heads(port: int, api_key: str) -> dict[str, tuple[int, set[str]]]:
    return {
        kind: await response_head(port, request.format(key=api_key)) for kind, request in REQUESTS.items()
    }


async def test_no_server_header_on_any_response(start_rotary: Any, tmp_path: Path) -> None:
    rotary = start_rotary(CONFIG)
    answers = await heads(rotary.port, rotary.api_key)
    with centrifugo_process(tmp_path / "centrifugo", {**CONFIG, "http_api": {"key": "k"}}) as centrifugo:
        expected = await heads(centrifugo.port, "k")
    assert {kind: status for kind, (status, _) in answers.items()} == {
        kind: status for kind, (status, _) in expected.items()
    }
    assert not [kind for kind, (_, names) in expected.items() if "server" in names]
    assert not [kind for kind, (_, names) in answers.items() if "server" in names]
