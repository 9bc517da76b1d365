"""Attacks the reliability kit runs on every CI run, beyond those the rest of the suite already
covers (reliability/attacks.py lists every attack with the tests that refuse it).

Each attack runs against a real server on a loopback port, and each test also checks that a
bystander, a client of another user subscribed to a channel, keeps getting publications and is not
disconnected: one client never hurts another.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers.server import InProcessServer, WsClient, start_in_process

from reliability.fuzz.harness import config_from

SECRET = "attack-secret-of-at-least-thirty-two-bytes"
API_KEY = "attack-api-key"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
FLOOD = 2000
"""Attacking requests or commands per test: enough to starve a server that lets one client hog it."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def config(**client: Any) -> dict[str, Any]:
    return {
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "allowed_origins": ["http://good.example"],
            **client,
        },
        "http_api": {"key": API_KEY},
        "channel": {
            "without_namespace": {"allow_subscribe_for_client": True},
            "namespaces": [{"name": "private"}],
        },
    }


@pytest.fixture
async def server() -> AsyncIterator[InProcessServer]:
    started = await start_in_process(config_from(config()))
    yield started
    await started.close()


class Bystander:
    """A client of another user on its own channel, checked before and after an attack."""

    def __init__(self, server: InProcessServer, client: WsClient) -> None:
        self.server = server
        self.client = client
        self.received = 0

    @classmethod
    async def join(cls, server: InProcessServer) -> Bystander:
        return cls(server, await server.connect("bystander", "news"))

    async def still_served(self) -> None:
        """A publication sent now reaches the bystander, whose connection is still open."""
        self.received += 1
        status, body = await self.server.call("publish", {"channel": "news", "data": {"n": self.received}})
        assert status == 200 and "result" in body, body
        push = await self.client.push("pub")
        assert push["pub"]["data"] == {"n": self.received}
        assert not self.client.ws.closed


async def test_alg_confusion_hs256_signed_with_the_rsa_public_key_is_refused() -> None:
    """The server trusts an RSA public key; a token "signed" with that key as an HMAC secret must
    not pass (the classic confusion of public-key and shared-secret algorithms)."""
    settings = config()
    settings["client"]["token"] = {"rsa_public_key": RSA_PUBLIC_PEM}
    started = await start_in_process(config_from(settings))
    try:
        header = b64url(b'{"alg":"HS256","typ":"JWT"}')
        payload = b64url(b'{"sub":"mallory"}')
        signature = hmac.new(RSA_PUBLIC_PEM.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        forged = f"{header}.{payload}.{b64url(signature)}"
        ws = await started.http.ws_connect("/connection/websocket", protocols=("centrifuge-json",))
        client = WsClient(ws)
        await ws.send_str(orjson.dumps({"id": 1, "connect": {"token": forged}}).decode())
        assert await client.close_code() == 3500
        honest = jwt.encode({"sub": "alice"}, RSA_KEY, algorithm="RS256")
        ws = await started.http.ws_connect("/connection/websocket", protocols=("centrifuge-json",))
        reply = await WsClient(ws).command(connect={"token": honest})
        assert reply["connect"]["client"]
        await ws.close()
    finally:
        await started.close()


async def test_subscription_tokens_of_another_channel_or_user_are_refused(server: InProcessServer) -> None:
    """A token minted for another channel, or for another user, ends the connection with 3500
    (invalid token), as Centrifugo does."""
    bystander = await Bystander.join(server)
    for claims in (
        {"sub": "mallory", "channel": "private:other"},
        {"sub": "alice", "channel": "private:secrets"},
    ):
        mallory = await server.connect("mallory")
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        await mallory.ws.send_str(
            orjson.dumps({"id": 99, "subscribe": {"channel": "private:secrets", "token": token}}).decode()
        )
        assert await mallory.close_code() == 3500
    await bystander.still_served()


async def test_api_key_brute_force_gets_401_and_starves_no_one(server: InProcessServer) -> None:
    bystander = await Bystander.join(server)

    async def guess(number: int) -> int:
        response = await server.http.post(
            "/api/publish",
            data=orjson.dumps({"channel": "news", "data": {"guess": number}}),
            headers={"X-API-Key": f"guess-{number}"},
        )
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(guess(n) for n in range(FLOOD)))
    assert set(statuses) == {401}
    await bystander.still_served()


async def _upgrade_offering_deflate(
    server: InProcessServer,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    url = server.http.make_url("/connection/websocket")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    writer.write(
        (
            f"GET /connection/websocket HTTP/1.1\r\nHost: {url.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer, head


async def test_compressed_frames_are_not_negotiated_when_compression_is_off(server: InProcessServer) -> None:
    """No permessage-deflate is negotiated (``websocket.compression`` is off), so a client that sends
    a compressed frame anyway is cut off with a protocol error."""
    bystander = await Bystander.join(server)
    reader, writer, head = await _upgrade_offering_deflate(server)
    assert b"sec-websocket-extensions" not in head.lower()
    bomb = bytes([0xC1, 0x80 | 4]) + b"\x00\x00\x00\x00" + b"\x00\x00\xff\xff"  # RSV1 set, masked
    writer.write(bomb)
    await writer.drain()
    rest = await asyncio.wait_for(reader.read(), 10)
    assert rest[:1] == b"\x88", rest[:16]  # a close frame, then the end of the stream
    writer.close()
    await bystander.still_served()


async def test_a_decompression_bomb_is_bounded_when_compression_is_on() -> None:
    """With ``websocket.compression`` on, a 2 KB frame (under ``message_size_limit``) inflating to
    2 MiB, past the decompressed limit (ten times ``message_size_limit`` by default, as in
    Centrifugo), closes that connection alone with 1009, without inflating the whole of it."""
    compressing = config()
    compressing["websocket"] = {"compression": True, "message_size_limit": 4096}
    server = await start_in_process(config_from(compressing))
    try:
        bystander = await Bystander.join(server)
        reader, writer, head = await _upgrade_offering_deflate(server)
        assert b"permessage-deflate; server_no_context_takeover; client_no_context_takeover" in head
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        payload = deflater.compress(b"\x00" * (2 << 20)) + deflater.flush(zlib.Z_SYNC_FLUSH)
        assert len(payload) < 4096
        header = bytes([0xC1, 0x80 | 126]) + len(payload).to_bytes(2) + b"\x00\x00\x00\x00"
        writer.write(header + payload)
        rest = await asyncio.wait_for(reader.read(), 10)
        close = (1009).to_bytes(2) + b"message too big after decompression"  # Centrifugo's words
        assert rest[: 2 + len(close)] == bytes([0x88, len(close)]) + close, rest[:40]
        writer.close()
        await bystander.still_served()
    finally:
        await server.close()


async def test_a_flood_of_subscribe_commands_is_bounded(server: InProcessServer) -> None:
    """One frame with thousands of subscribes: those past ``client.channel_limit`` get error 106
    (limit exceeded), as Centrifugo answers, and the bystander is still served."""
    bystander = await Bystander.join(server)
    ws = await server.http.ws_connect("/connection/websocket", protocols=("centrifuge-json",))
    attacker = WsClient(ws)
    token = jwt.encode({"sub": "mallory"}, SECRET, algorithm="HS256")
    await attacker.command(connect={"token": token})
    commands = 1000  # the frame stays under websocket.message_size_limit (64 KiB)
    frame = b"\n".join(
        orjson.dumps({"id": 10 + n, "subscribe": {"channel": f"flood{n}"}}) for n in range(commands)
    )
    await ws.send_str(frame.decode())
    errors = 0
    async with asyncio.timeout(30):
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            errors += msg.data.count('"code":106')
            if errors:
                break
    assert errors, "subscriptions past client.channel_limit were not refused"
    await bystander.still_served()


async def test_a_huge_api_batch_does_not_hold_the_event_loop(server: InProcessServer) -> None:
    """A batch of 5,000 publishes runs while the bystander's
    publication goes through: the executor returns to the loop between commands."""
    bystander = await Bystander.join(server)
    spy = await server.connect("spy", "sink")
    commands = [{"publish": {"channel": "sink", "data": 1}} for _ in range(5_000)]
    batch = asyncio.create_task(server.call("batch", {"commands": commands}))
    await spy.push("pub")  # the batch is running
    await bystander.still_served()
    assert not batch.done(), "the bystander was served only after the whole batch"
    status, body = await batch
    assert status == 200 and len(body["replies"]) == len(commands)
