"""Subscribers over the transports beside bidirectional WebSocket, for fan-out per transport.

Each one timestamps publications like ``loadgen.Subscriber`` (the publisher's ``{"t": ns}`` against
this process's CLOCK_MONOTONIC) and stays as cheap: it looks for stamps in the received bytes without
parsing JSON. The emulated and unidirectional subscribers are subscribed by the server, from the
``channels`` claim of their token; the SockJS one subscribes itself, as over WebSocket:

- ``http_stream`` and ``sse``: bidirectional emulation, the connect command in the first request
  (https://centrifugal.dev/docs/transports/http_stream, https://centrifugal.dev/docs/transports/sse);
- ``uni_http_stream``, ``uni_sse``, ``uni_websocket``: the connect request of the unidirectional
  transports (https://centrifugal.dev/docs/transports/uni_sse and the pages beside it);
- ``sockjs``: sockjs-client's websocket sub-transport framing, ``["..."]`` up and ``a[...]`` down.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import quote, urlsplit

import orjson
from loadgen import PONG, Stats
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

STAMP = re.compile(rb'\{\\?"t\\?":(\d+)')
"""The publisher's stamp, plain or inside a JSON string (SockJS)."""
CONNECTED = b'"connect"'

STREAM_KINDS = ("http_stream", "sse", "uni_http_stream", "uni_sse")


def stream_request(kind: str, host: str, token: str) -> bytes:
    """The HTTP request that opens one subscriber's stream."""
    if kind == "http_stream":
        return _post(host, "/connection/http_stream", orjson.dumps({"id": 1, "connect": {"token": token}}))
    if kind == "uni_http_stream":
        return _post(host, "/connection/uni_http_stream", orjson.dumps({"token": token}))
    command = {"id": 1, "connect": {"token": token}} if kind == "sse" else {"token": token}
    query = quote(orjson.dumps(command).decode())
    return f"GET /connection/{kind}?cf_connect={query} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def _post(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class StreamSubscriber(asyncio.Protocol):
    """One HTTP-streaming subscriber: sends its request, then scans every complete line for stamps."""

    def __init__(self, request: bytes, stats: Stats, ready: asyncio.Future[None]) -> None:
        self._request = request
        self._stats = stats
        self._ready = ready
        self._buffer = b""
        self._headers_done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        if not self._headers_done:
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                self._buffer = buffer
                return
            if not head.startswith(b"HTTP/1.1 200"):
                self._fail(f"response: {head[:80]!r}")
                return
            self._headers_done = True
            buffer = rest
        end = buffer.rfind(b"\n") + 1
        complete, self._buffer = buffer[:end], buffer[end:]
        if not complete:
            return
        stamps = STAMP.findall(complete)
        if stamps:
            self._stats.record(time.monotonic_ns(), stamps)
        if not self._ready.done() and CONNECTED in complete:
            self._ready.set_result(None)

    def _fail(self, reason: str) -> None:
        self._stats.errors.append(reason)
        if not self._ready.done():
            self._ready.set_exception(RuntimeError(reason))

    def connection_lost(self, exc: Exception | None) -> None:
        self._stats.disconnects += 1
        self._fail("disconnected")


class UniWebSocketSubscriber(WSListener):
    """A uni_websocket client: its one message is the connect request; then it only reads."""

    def __init__(self, token: str, stats: Stats, ready: asyncio.Future[None]) -> None:
        self._connect = orjson.dumps({"token": token})
        self._stats = stats
        self._ready = ready

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, self._connect)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        payload = frame.get_payload_as_bytes()
        stamps = STAMP.findall(payload)
        if stamps:
            self._stats.record(time.monotonic_ns(), stamps)
        elif not self._ready.done() and CONNECTED in payload:
            self._ready.set_result(None)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._stats.disconnects += 1
        if not self._ready.done():
            self._ready.set_exception(RuntimeError("disconnected"))


class SockJSSubscriber(WSListener):
    """A sockjs-client websocket session: connect and subscribe commands as SockJS messages."""

    def __init__(self, token: str, channel: str, stats: Stats, ready: asyncio.Future[None]) -> None:
        self._connect = _sockjs_message(orjson.dumps({"id": 1, "connect": {"token": token}}))
        self._subscribe = _sockjs_message(orjson.dumps({"id": 2, "subscribe": {"channel": channel}}))
        self._stats = stats
        self._ready = ready

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        payload = frame.get_payload_as_bytes()
        if payload == b"o":
            transport.send(WSMsgType.TEXT, self._connect)
            return
        if not payload.startswith(b"a"):
            if payload.startswith(b"c"):
                self._fail(f"closed: {payload!r}")
            return
        stamps = STAMP.findall(payload)
        if stamps:
            self._stats.record(time.monotonic_ns(), stamps)
            return
        for message in orjson.loads(payload[1:]):
            for line in message.encode().split(b"\n"):
                if line == PONG:
                    transport.send(WSMsgType.TEXT, _sockjs_message(PONG))
                elif line.startswith(b'{"id":1'):
                    transport.send(WSMsgType.TEXT, self._subscribe)
                elif line.startswith(b'{"id":2') and not self._ready.done():
                    self._ready.set_result(None)

    def _fail(self, reason: str) -> None:
        self._stats.errors.append(reason)
        if not self._ready.done():
            self._ready.set_exception(RuntimeError(reason))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._stats.disconnects += 1
        self._fail("disconnected")


def _sockjs_message(command: bytes) -> bytes:
    return orjson.dumps([command.decode()])


Closer = Callable[[], Awaitable[None]]


async def connect_transport(
    kind: str,
    base_url: str,
    count: int,
    token: str,
    channel: str,
    stats: Stats,
    concurrency: int = 64,
    timeout: float = 120.0,
) -> Closer:
    """Opens ``count`` subscribers over ``kind`` (``concurrency`` at a time); returns how to close them."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    ws_base = base_url.replace("http", "ws", 1)
    gate = asyncio.Semaphore(concurrency)
    streams: list[asyncio.Transport] = []
    sockets: list[WSTransport] = []

    async def one() -> None:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            if kind in STREAM_KINDS:
                request = stream_request(kind, f"{host}:{port}", token)
                stream, _ = await loop.create_connection(
                    lambda: StreamSubscriber(request, stats, ready), host, port
                )
                streams.append(stream)
            elif kind == "uni_websocket":
                url = f"{ws_base}/connection/uni_websocket"
                ws, _ = await ws_connect(lambda: UniWebSocketSubscriber(token, stats, ready), url)
                sockets.append(ws)
            elif kind == "sockjs":
                url = f"{ws_base}/connection/sockjs/000/{uuid.uuid4().hex}/websocket"
                ws, _ = await ws_connect(lambda: SockJSSubscriber(token, channel, stats, ready), url)
                sockets.append(ws)
            else:
                raise ValueError(f"unknown transport {kind}")
            await ready

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout)

    async def close() -> None:
        for stream in streams:
            stream.close()
        for ws in sockets:
            ws.disconnect()
        await asyncio.gather(*(ws.wait_disconnected() for ws in sockets), return_exceptions=True)
        await asyncio.sleep(0.2)

    return close
