"""Garbage and misbehaviour on the client protocol get Centrifugo's exact answers, and hurt no one else.

SDKs never send malformed frames, so these tests speak the wire protocol with a raw ``websockets``
client. Each one checks the close code (or the error reply) Centrifugo gives, then that a fresh SDK
client still connects and is served normally
(https://centrifugal.dev/docs/transports/client_protocol, §Disconnect codes and §Error codes).
The last test sends junk to every other connection endpoint (wrong origin, no upgrade, malformed or
oversized bodies, unknown sessions) and checks each answers with its exact 4xx.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import websockets
from centrifuge.protocol import client_pb2
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

pytestmark = pytest.mark.compat

PROTOBUF = "centrifuge-protobuf"
Served = Callable[[Any], Awaitable[None]]
TokenFactory = Callable[..., str]


async def open_ws(server: Any, *, protobuf: bool = False) -> ClientConnection:
    subprotocols = [Subprotocol(PROTOBUF)] if protobuf else None
    return await websockets.connect(server.ws_url, subprotocols=subprotocols, open_timeout=5, max_size=None)


async def close_of(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, str]:
    """Reads until the server closes the connection; returns the close code and reason it sent."""
    async with asyncio.timeout(timeout):
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "the connection ended without a close frame from the server"
            return closed.rcvd.code, closed.rcvd.reason


async def json_reply(ws: ClientConnection, command: dict[str, Any]) -> dict[str, Any]:
    """Sends one JSON command and returns the reply carrying its id (skipping pings and pushes)."""
    await ws.send(json.dumps(command))
    async with asyncio.timeout(5):
        while True:
            for line in str(await ws.recv()).splitlines():
                reply: dict[str, Any] = json.loads(line)
                if reply.get("id") == command["id"]:
                    return reply


async def json_connected(ws: ClientConnection, token: str) -> None:
    reply = await json_reply(ws, {"id": 1, "connect": {"token": token}})
    assert "connect" in reply, reply


def pb_frame(*commands: client_pb2.Command) -> bytes:
    """Commands as a Protobuf WebSocket frame: each one prefixed by its varint length."""
    frame = bytearray()
    for command in commands:
        body = command.SerializeToString()
        frame += _varint(len(body)) + body
    return bytes(frame)


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


async def pb_connected(ws: ClientConnection, token: str) -> None:
    await ws.send(pb_frame(client_pb2.Command(id=1, connect=client_pb2.ConnectRequest(token=token))))
    frame = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(frame, bytes)
    reply = client_pb2.Reply()
    length, start = _read_varint(frame)
    reply.ParseFromString(frame[start : start + length])
    assert reply.id == 1 and reply.HasField("connect"), reply


def _read_varint(data: bytes) -> tuple[int, int]:
    """The varint at the start of ``data`` and the index after it."""
    value = 0
    for index, byte in enumerate(data):
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, index + 1
    raise ValueError("truncated varint")


def unsigned_token(claims: dict[str, Any]) -> str:
    """A JWT with ``alg: none`` and an empty signature."""
    header, body = ({"alg": "none", "typ": "JWT"}, claims)
    return ".".join(_base64url(part) for part in (header, body)) + "."


def _base64url(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


async def test_malformed_json_frame(rotary: Any, make_token: TokenFactory, assert_sdk_served: Served) -> None:
    async with await open_ws(rotary) as ws:
        await json_connected(ws, make_token({"sub": "42"}))
        await ws.send('{"id": 2, "subscribe": {"channel": ')
        assert await close_of(ws) == (3501, "bad request")
    await assert_sdk_served(rotary)


async def test_malformed_protobuf_frame(
    rotary: Any, make_token: TokenFactory, assert_sdk_served: Served
) -> None:
    async with await open_ws(rotary, protobuf=True) as ws:
        await pb_connected(ws, make_token({"sub": "42"}))
        await ws.send(b"\x0a\x08\xff\xff")  # announces 10 bytes, carries 3, the last a broken varint
        assert await close_of(ws) == (3501, "bad request")
    await assert_sdk_served(rotary)


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_unknown_command(
    rotary: Any, make_token: TokenFactory, assert_sdk_served: Served, protobuf: bool
) -> None:
    async with await open_ws(rotary, protobuf=protobuf) as ws:
        if protobuf:
            await pb_connected(ws, make_token({"sub": "42"}))
            unknown_field = b"\xf0\x01\x01"  # field 30, varint 1: no request Command defines
            body = client_pb2.Command(id=2).SerializeToString() + unknown_field
            await ws.send(_varint(len(body)) + body)
        else:
            await json_connected(ws, make_token({"sub": "42"}))
            await ws.send(json.dumps({"id": 2, "frobnicate": {"channel": "chat:1"}}))
        assert await close_of(ws) == (3501, "bad request")
    await assert_sdk_served(rotary)


async def test_command_before_connect(rotary: Any, assert_sdk_served: Served) -> None:
    async with await open_ws(rotary) as ws:
        await ws.send(json.dumps({"id": 1, "subscribe": {"channel": "chat:1"}}))
        assert await close_of(ws) == (3501, "bad request")
    await assert_sdk_served(rotary)


async def test_frame_over_message_size_limit(
    rotary: Any, make_token: TokenFactory, assert_sdk_served: Served
) -> None:
    async with await open_ws(rotary) as ws:
        await json_connected(ws, make_token({"sub": "42"}))
        padding = "x" * 70_000  # websocket.message_size_limit defaults to 65536 bytes
        await ws.send(json.dumps({"id": 2, "publish": {"channel": "chat:1", "data": {"pad": padding}}}))
        assert await close_of(ws) == (1009, "")
    await assert_sdk_served(rotary)


async def test_bad_token_signature(rotary: Any, make_token: TokenFactory, assert_sdk_served: Served) -> None:
    forged = make_token({"sub": "42"}, secret="not-the-server-secret-but-long-enough-too")
    async with await open_ws(rotary) as ws:
        await ws.send(json.dumps({"id": 1, "connect": {"token": forged}}))
        assert await close_of(ws) == (3500, "invalid token")
    await assert_sdk_served(rotary)


async def test_unsigned_token(rotary: Any, assert_sdk_served: Served) -> None:
    async with await open_ws(rotary) as ws:
        await ws.send(json.dumps({"id": 1, "connect": {"token": unsigned_token({"sub": "42"})}}))
        assert await close_of(ws) == (3500, "invalid token")
    await assert_sdk_served(rotary)


async def test_expired_token(rotary: Any, make_token: TokenFactory, assert_sdk_served: Served) -> None:
    expired = make_token({"sub": "42", "exp": int(time.time()) - 60})
    async with await open_ws(rotary) as ws:
        reply = await json_reply(ws, {"id": 1, "connect": {"token": expired}})
        assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}
    await assert_sdk_served(rotary)


async def test_token_not_yet_valid(rotary: Any, make_token: TokenFactory, assert_sdk_served: Served) -> None:
    early = make_token({"sub": "42", "nbf": int(time.time()) + 3600})
    async with await open_ws(rotary) as ws:
        reply = await json_reply(ws, {"id": 1, "connect": {"token": early}})
        assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}
    await assert_sdk_served(rotary)


async def test_subscribe_to_unknown_namespace(
    rotary: Any, make_token: TokenFactory, assert_sdk_served: Served
) -> None:
    async with await open_ws(rotary) as ws:
        await json_connected(ws, make_token({"sub": "42"}))
        reply = await json_reply(ws, {"id": 2, "subscribe": {"channel": "nowhere:1"}})
        assert reply == {"id": 2, "error": {"code": 102, "message": "unknown channel"}}
    await assert_sdk_served(rotary)


async def test_no_connect_within_stale_delay(start_rotary: Any, assert_sdk_served: Served) -> None:
    server = start_rotary({"client": {"stale_close_delay": "300ms"}})
    async with await open_ws(server) as ws:
        started = time.monotonic()
        assert await close_of(ws) == (3502, "stale")
        assert time.monotonic() - started < 3
    await assert_sdk_served(server)


async def test_missing_pong(start_rotary: Any, make_token: TokenFactory, assert_sdk_served: Served) -> None:
    server = start_rotary({"client": {"ping_interval": "1s", "pong_timeout": "500ms"}})
    async with await open_ws(server) as ws:
        await json_connected(ws, make_token({"sub": "42"}))
        async with asyncio.timeout(5):
            assert await ws.recv() == "{}"  # the server's ping; no pong goes back
        assert await close_of(ws) == (3012, "no pong")
    await assert_sdk_served(server)


async def dropped_silently(ws: ClientConnection, timeout: float = 30.0) -> list[str | bytes]:
    """Reads until the server drops the connection; what arrived meanwhile. Fails on a close frame."""
    received: list[str | bytes] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                received.append(await ws.recv())
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is None, f"expected no close frame, got {closed.rcvd}"
    return received


@pytest.mark.parametrize("then", ["connect", "subscribe"])
async def test_connection_unusable_after_a_failed_connect(
    rotary: Any, make_token: TokenFactory, assert_sdk_served: Served, then: str
) -> None:
    """As Centrifugo v6.9.1 does (run side by side): after a refused connect the server reads no
    more commands, not even a valid connect, and drops the socket without a close frame (after its
    5 s close-frame wait), so an SDK reconnects instead of taking a terminal code."""
    expired = make_token({"sub": "42", "exp": int(time.time()) - 60})
    async with await open_ws(rotary) as ws:
        reply = await json_reply(ws, {"id": 1, "connect": {"token": expired}})
        assert reply["error"]["code"] == 109
        body = {"token": make_token({"sub": "42"})} if then == "connect" else {"channel": "chat:1"}
        await ws.send(json.dumps({"id": 2, then: body}))
        assert await dropped_silently(ws) == []
    await assert_sdk_served(rotary)


@pytest.mark.parametrize(
    "command",
    ["subscribe", "unsubscribe", "publish", "presence", "presence_stats", "history", "sub_refresh"],
)
async def test_empty_channel_name_is_a_bad_request(
    rotary: Any, make_token: TokenFactory, assert_sdk_served: Served, command: str
) -> None:
    """Every command naming a channel ends the connection with 3501 when the name is empty."""
    async with await open_ws(rotary) as ws:
        await json_connected(ws, make_token({"sub": "42"}))
        await ws.send(json.dumps({"id": 2, command: {"channel": ""}}))
        assert await close_of(ws) == (3501, "bad request")
    await assert_sdk_served(rotary)


def nested_filter(depth: int) -> dict[str, Any]:
    """A tags filter of ``depth`` levels: ``not`` nodes around one leaf."""
    node: dict[str, Any] = {"key": "ticker", "cmp": "ex"}
    for _ in range(depth - 1):
        node = {"op": "not", "nodes": [node]}
    return node


FILTERS_ALLOWED = {
    "channel": {"without_namespace": {"allow_subscribe_for_client": True, "allow_tags_filter": True}}
}


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_tags_filter_too_deep(
    start_rotary: Any, make_token: TokenFactory, assert_sdk_served: Served, protobuf: bool
) -> None:
    """A filter deeper than 64 levels is a bad request (107); one too deep for the decoder (over about
    100 nested messages, as upb's Protobuf decoder allows) ends the connection with 3501. Centrifugo
    sets no bound; rotary needs one because every publication is matched against every filter."""
    server = start_rotary(FILTERS_ALLOWED)
    token = make_token({"sub": "42"})
    async with await open_ws(server, protobuf=protobuf) as ws:
        if protobuf:
            await pb_connected(ws, token)
            command = client_pb2.Command(id=2)
            command.subscribe.channel = "feed"
            node = command.subscribe.tf
            for _ in range(64):
                node.op = "not"
                node = node.nodes.add()
            node.key, node.cmp = "ticker", "ex"
            await ws.send(pb_frame(command))
            reply = client_pb2.Reply()
            frame = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(frame, bytes)
            length, start = _read_varint(frame)
            reply.ParseFromString(frame[start : start + length])
            assert (reply.id, reply.error.code) == (2, 107)
        else:
            await json_connected(ws, token)
            reply = await json_reply(ws, {"id": 2, "subscribe": {"channel": "feed", "tf": nested_filter(65)}})
            assert reply == {"id": 2, "error": {"code": 107, "message": "bad request"}}
            reply = await json_reply(ws, {"id": 3, "subscribe": {"channel": "feed", "tf": nested_filter(64)}})
            assert "error" not in reply, reply
            await ws.send(json.dumps({"id": 4, "subscribe": {"channel": "deeper", "tf": nested_filter(300)}}))
            assert await close_of(ws) == (3501, "bad request")
    await assert_sdk_served(server)


EVERY_TRANSPORT = {
    "uni_websocket": {"enabled": True},
    "uni_sse": {"enabled": True},
    "uni_http_stream": {"enabled": True},
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    "sockjs": {"enabled": True},
    "init": {"enabled": True},
    "client": {"allowed_origins": ["http://good.example"]},
}
EVIL = {"Origin": "http://evil.example"}
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}
JSON_BODY = {"Content-Type": "application/json"}
TOO_LARGE = b"x" * 70000
"""Past every endpoint's 65536-byte default body limit."""

JUNK: list[tuple[str, str, dict[str, str], bytes, int]] = [
    ("GET", "/connection/websocket", {**EVIL, **UPGRADE}, b"", 403),
    ("GET", "/connection/uni_websocket", {**EVIL, **UPGRADE}, b"", 403),
    ("GET", "/connection/sockjs/000/abc/websocket", {**EVIL, **UPGRADE}, b"", 403),
    ("GET", "/connection/websocket", {}, b"", 400),
    ("GET", "/connection/uni_websocket", {}, b"", 400),
    ("GET", "/connection/uni_sse?cf_connect=%7Bnot", {}, b"", 400),
    ("POST", "/connection/uni_sse", JSON_BODY, b"{not", 400),
    ("POST", "/connection/uni_sse", JSON_BODY, TOO_LARGE, 413),
    ("POST", "/connection/uni_http_stream", JSON_BODY, b"{not", 400),
    ("POST", "/connection/uni_http_stream", JSON_BODY, b"", 400),
    ("POST", "/connection/uni_http_stream", JSON_BODY, TOO_LARGE, 413),
    ("POST", "/connection/http_stream", JSON_BODY, TOO_LARGE, 413),
    ("POST", "/connection/sse", JSON_BODY, TOO_LARGE, 413),
    ("PUT", "/connection/http_stream", JSON_BODY, b"{}", 405),
    ("POST", "/emulation", JSON_BODY, TOO_LARGE, 413),
    ("POST", "/emulation", JSON_BODY, b"{not", 400),
    ("POST", "/emulation", JSON_BODY, b'{"session": "nope", "node": "nope", "data": {}}', 404),
    ("POST", "/connection/sockjs/000/nope/xhr_send", JSON_BODY, b'["{}"]', 404),
    ("GET", "/connection/sockjs/info", EVIL, b"", 403),
    ("POST", "/connection/init", {}, b"", 405),
]
"""(method, path, headers, body, status): junk for every connection endpoint, with its exact answer."""


async def test_every_transport_answers_junk_with_a_4xx(start_rotary: Any, assert_sdk_served: Served) -> None:
    """Wrong origins, missing upgrades, malformed and oversized bodies, unknown emulation and SockJS
    sessions: each endpoint answers with a 4xx (never a 5xx), and the server goes on serving."""
    server = start_rotary(EVERY_TRANSPORT)
    async with aiohttp.ClientSession() as session:
        for method, path, headers, body, status in JUNK:
            async with session.request(
                method, server.http_url + path, headers=headers, data=body
            ) as response:
                assert response.status == status, (method, path, response.status, await response.text())
    await assert_sdk_served(server)


BODY_ENDPOINTS = [
    "/connection/uni_sse",
    "/connection/uni_http_stream",
    "/connection/http_stream",
    "/connection/sse",
    "/emulation",
    "/connection/sockjs/000/nope/xhr_send",
]
"""Every endpoint that reads a request body."""


async def answer_to_broken_chunked_post(port: int, path: str) -> bytes:
    """What rotary answers to a POST whose chunked body breaks its framing (a chunk size that is not
    hex) once the handler reads it, sent on a raw socket since an HTTP client cannot send it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        writer.write(f"{head}Content-Type: application/json\r\n\r\n2\r\n{{}}\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.2)  # not a timing margin: the outcome is the same if the handler waits
        writer.write(b"zz\r\n")
        return await asyncio.wait_for(reader.read(), 60)  # aiohttp lingers up to 10 s on a body
    finally:
        writer.close()


async def test_every_body_endpoint_drops_a_broken_body_quietly(
    start_rotary: Any, assert_sdk_served: Served
) -> None:
    """A body whose chunked framing breaks ends its connection (aiohttp drops it, as Go's server
    gives up on the body) on every endpoint that reads a body: never a 5xx, and no handler lets the
    unreadable body escape as a logged traceback."""
    server = start_rotary(EVERY_TRANSPORT)
    answers = await asyncio.gather(*(answer_to_broken_chunked_post(server.port, p) for p in BODY_ENDPOINTS))
    for path, answer in zip(BODY_ENDPOINTS, answers, strict=True):
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), (path, answer)
    assert "Traceback" not in server.log()  # every handler ended before its connection closed
    await assert_sdk_served(server)
