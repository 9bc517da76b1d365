"""Cheap load-generator clients for the scale benchmark: counting WebSocket subscribers, API hammers.

scale.py measures a server at saturation on a 2-core host, where every microsecond the generator
spends per delivery is taken from the server. So these clients do the least that still follows the
protocols (https://centrifugal.dev/docs/transports/client_protocol,
https://centrifugal.dev/docs/server/server_api):

- ``CountingSubscriber`` does the WebSocket handshake and the ``connect``/``subscribe`` exchange
  itself on a plain asyncio protocol, then stops parsing: it counts ``"pub":`` in the received bytes
  (one per publication push, whatever the framing). The server's ping interval is set beyond the run
  in scale.py's config, so nothing needs answering.
- ``ApiHammer`` keeps HTTP/1.1 connections alive and sends the next request on each the moment its
  response is complete, parsing only the status line and Content-Length.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import orjson

PUB = b'"pub":'
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


@dataclass
class Counter:
    """Deliveries seen by all counting subscribers (one event loop, no locks)."""

    deliveries: int = 0
    published: int = 0
    disconnects: int = 0
    errors: list[str] = field(default_factory=list)


def client_frame(payload: bytes) -> bytes:
    """A masked text frame; the zero mask key leaves the payload as is (servers only unmask)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, 0x80 | size))
    elif size < 65536:
        header = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


def server_frames(buffer: bytearray) -> list[bytes]:
    """Pops the complete unmasked frames at the head of ``buffer``; returns their payloads."""
    payloads = []
    while len(buffer) >= 2:
        size, start = buffer[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(buffer[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(buffer[2:10], "big"), 10
        if len(buffer) < start + size:
            break
        payloads.append(bytes(buffer[start : start + size]))
        del buffer[: start + size]
    return payloads


class CountingSubscriber(asyncio.Protocol):
    """One client: handshake, connect, subscribe, then only count publications."""

    def __init__(
        self, host: str, path: str, token: str, channel: str, counter: Counter, ready: asyncio.Future[None]
    ) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self._upgrade = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._connect = client_frame(orjson.dumps({"id": 1, "connect": {"token": token}}))
        self._subscribe = client_frame(orjson.dumps({"id": 2, "subscribe": {"channel": channel}}))
        self._counter = counter
        self._ready = ready
        self._buffer = bytearray()
        self._upgraded = False
        self._counting = False
        self._tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._upgrade)

    def data_received(self, data: bytes) -> None:
        if self._counting:
            # A match split over two reads lies in the last 5 bytes of one and the first 5 of the next.
            self._counter.deliveries += data.count(PUB) + (self._tail + data[:5]).count(PUB)
            self._tail = data[-5:]
            return
        self._buffer += data
        if not self._upgraded:
            head, sep, _ = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                return self._fail(f"handshake: {bytes(head[:80])!r}")
            del self._buffer[: len(head) + 4]
            self._upgraded = True
            self._write(self._connect)
        for payload in server_frames(self._buffer):
            self._reply(payload)

    def _reply(self, payload: bytes) -> None:
        reply = orjson.loads(payload.split(b"\n", 1)[0])
        if "error" in reply:
            self._fail(f"reply error: {reply}")
        elif reply.get("id") == 1:
            self._write(self._subscribe)
        elif reply.get("id") == 2:
            self._counting = True
            self._counter.deliveries += bytes(self._buffer).count(PUB)
            self._buffer.clear()
            if not self._ready.done():
                self._ready.set_result(None)

    def _write(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frame)

    def _fail(self, reason: str) -> None:
        self._counter.errors.append(reason)
        if not self._ready.done():
            self._ready.set_exception(RuntimeError(reason))

    def connection_lost(self, exc: Exception | None) -> None:
        self._counter.disconnects += 1
        self._fail("disconnected")


async def connect_counting(
    url: str,
    count: int,
    token: str,
    channel: str,
    counter: Counter,
    concurrency: int = 64,
    timeout: float = 120.0,
) -> list[asyncio.Transport]:
    """Opens ``count`` subscribed counting connections, ``concurrency`` handshakes at a time."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    gate = asyncio.Semaphore(concurrency)

    async def one() -> asyncio.Transport:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: CountingSubscriber(f"{host}:{port}", parts.path, token, channel, counter, ready),
                host,
                port,
            )
            await ready
            return transport

    return list(await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout))


async def close_all(transports: list[asyncio.Transport]) -> None:
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.2)


@dataclass
class HammerStats:
    responses: int = 0
    errors: int = 0
    first_error: str = ""


class _Hammering(asyncio.Protocol):
    """One keep-alive connection sending ``request`` again as soon as each response is complete."""

    def __init__(self, request: bytes, stats: HammerStats, running: list[bool]) -> None:
        self._request = request
        self._stats = stats
        self._running = running
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = CONTENT_LENGTH.search(self._buffer, 0, end + 2)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self._buffer) < total:
                return
            self._count(bytes(self._buffer[:total]), end)
            del self._buffer[:total]
            if not self._running[0]:
                self._finish()
                return
            assert self.transport is not None
            self.transport.write(self._request)

    def _count(self, response: bytes, head_end: int) -> None:
        if response.startswith(b"HTTP/1.1 200") and b'"error"' not in response[head_end:]:
            self._stats.responses += 1
            return
        self._stats.errors += 1
        self._stats.first_error = self._stats.first_error or response[:200].decode(errors="replace")

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()


class ApiHammer:
    """``connections`` keep-alive clients, each with one ``publish`` request in flight at a time."""

    def __init__(self, api_url: str, api_key: str, channel: str, connections: int) -> None:
        parts = urlsplit(api_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        body = b'{"channel":%s,"data":{"t":1}}' % orjson.dumps(channel)
        self._request = (
            f"POST {parts.path.rstrip('/')}/publish HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"X-API-Key: {api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self._connections = connections
        self.stats = HammerStats()

    async def run(self, duration: float) -> float:
        """Hammers for ``duration`` seconds; returns the wall time until the last response."""
        loop = asyncio.get_running_loop()
        running = [True]
        protocols = []
        start = time.monotonic()
        for _ in range(self._connections):
            _, protocol = await loop.create_connection(
                lambda: _Hammering(self._request, self.stats, running), self._host, self._port
            )
            protocols.append(protocol)
        await asyncio.sleep(duration - (time.monotonic() - start))
        running[0] = False
        await asyncio.wait_for(asyncio.gather(*(p.done for p in protocols)), 30)
        wall = time.monotonic() - start
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        return wall
