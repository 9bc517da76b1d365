"""JSON nested deeply is accepted where Centrifugo accepts it and refused where it refuses it, and
never costs a traceback or a stack overflow.

Figures from Centrifugo v6.9.1 (run against the binary): client payloads are kept raw at any depth
that fits a frame; the server API (both endpoints) and connection token claims go through Go's
encoding/json, which takes 10000 levels in all and refuses one more (HTTP 400; disconnect 3500).
See https://centrifugal.dev/docs/transports/client_protocol and /docs/server/server_api.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest
from test_bad_input import close_of, json_connected, json_reply, open_ws

pytestmark = pytest.mark.compat

GO_MAX_DEPTH = 10000


def nested(depth: int) -> bytes:
    """A JSON value ``depth`` levels deep."""
    return b"[" * depth + b"]" * depth


def token_with_info(secret: str, info: bytes) -> str:
    """An HS256 connection token whose ``info`` claim is the raw JSON ``info``."""

    def part(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signed = part(b'{"alg":"HS256","typ":"JWT"}') + b"." + part(b'{"sub":"42","info":' + info + b"}")
    signature = part(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    return (signed + b"." + signature).decode()


async def post(server: Any, path: str, body: bytes) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.http_url + path, data=body, headers={"X-API-Key": server.api_key}) as response,
    ):
        return response.status, await response.text()


@pytest.mark.parametrize("depth", [300, 5000, 30000])
async def test_client_publication_of_any_depth_is_delivered(rotary: Any, make_token: Any, depth: int) -> None:
    data = nested(depth)
    async with await open_ws(rotary) as subscriber, await open_ws(rotary) as publisher:
        for ws in (subscriber, publisher):
            await json_connected(ws, make_token({"sub": "42"}))
            assert "error" not in await json_reply(ws, {"id": 2, "subscribe": {"channel": "chat:deep"}})
        frame = b'{"id":3,"publish":{"channel":"chat:deep","data":%b}}' % data
        await publisher.send(frame.decode())
        async with asyncio.timeout(5):
            while True:
                message = str(await subscriber.recv())
                if '"pub"' in message:
                    break
        prefix = b'{"push":{"channel":"chat:deep","pub":{"data":'
        assert message.encode().startswith(prefix + data + b","), message[:200]


@pytest.mark.parametrize(
    ("depth", "served"), [(300, True), (5000, True), (GO_MAX_DEPTH - 1, True), (GO_MAX_DEPTH, False)]
)
async def test_token_info_depth(rotary: Any, depth: int, served: bool) -> None:
    """``info`` sits one level below the claims object: 9999 levels make 10000 in all."""
    token = token_with_info(rotary.secret, nested(depth))
    async with await open_ws(rotary) as ws:
        if served:
            await json_connected(ws, token)
        else:
            await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
            assert await close_of(ws) == (3500, "invalid token")


@pytest.mark.parametrize(("depth", "status"), [(1100, 200), (GO_MAX_DEPTH - 1, 200), (GO_MAX_DEPTH, 400)])
async def test_api_publish_depth(rotary: Any, depth: int, status: int) -> None:
    body = b'{"channel":"chat:api","data":%b}' % nested(depth)
    answer = await post(rotary, "/api/publish", body)
    assert answer[0] == status, answer
    if status == 200:
        assert "offset" in json.loads(answer[1])["result"]


@pytest.mark.parametrize(("depth", "status"), [(1100, 200), (GO_MAX_DEPTH - 2, 200), (GO_MAX_DEPTH - 1, 400)])
async def test_legacy_api_depth(rotary: Any, depth: int, status: int) -> None:
    """The legacy command wraps data two levels down (command, params), so 9998 is the deepest."""
    body = b'{"method":"publish","params":{"channel":"chat:api","data":%b}}' % nested(depth)
    answer = await post(rotary, "/api", body)
    assert answer[0] == status, answer
    if status == 400:
        assert "10000" in answer[1]


def token_with_header_field(secret: str, value: bytes) -> str:
    """An HS256 connection token whose header carries an extra field holding the raw JSON ``value``."""

    def part(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signed = part(b'{"alg":"HS256","typ":"JWT","x":' + value + b"}") + b"." + part(b'{"sub":"42"}')
    signature = part(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    return (signed + b"." + signature).decode()


@pytest.mark.parametrize(("depth", "served"), [(5000, True), (GO_MAX_DEPTH - 1, True), (GO_MAX_DEPTH, False)])
async def test_token_header_depth(rotary: Any, depth: int, served: bool) -> None:
    token = token_with_header_field(rotary.secret, nested(depth))
    async with await open_ws(rotary) as ws:
        if served:
            await json_connected(ws, token)
        else:
            await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
            assert await close_of(ws) == (3500, "invalid token")
