"""The load generator: picows WebSocket subscribers speaking the client protocol, and an HTTP publisher.

Subscribers connect with a JWT, subscribe to one channel and time every publication: the publisher
embeds ``time.monotonic_ns()`` in the data (CLOCK_MONOTONIC is shared by all processes of the host) and
the subscriber subtracts it from its own clock when the frame arrives. Pushes are recognised without
parsing JSON so that the generator, not the server, is what stays cheap
(https://centrifugal.dev/docs/transports/client_protocol).
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from array import array
from dataclasses import dataclass, field

import aiohttp
import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

STAMP = re.compile(rb'"t":(\d+)')
PONG = b"{}"
DEFLATE_TAIL = b"\x00\x00\xff\xff"  # stripped by a permessage-deflate sender (RFC 7692 7.2.1)


@dataclass
class Stats:
    """Everything the subscribers observed; shared by all of them (one event loop, no locks)."""

    deliveries: int = 0
    latencies: array[int] = field(default_factory=lambda: array("q"))
    last_receive: dict[int, int] = field(default_factory=dict)
    disconnects: int = 0
    errors: list[str] = field(default_factory=list)

    def record(self, now: int, stamps: list[bytes]) -> None:
        for raw in stamps:
            stamp = int(raw)
            self.latencies.append(now - stamp)
            self.last_receive[stamp] = now
        self.deliveries += len(stamps)

    def reset(self) -> None:
        self.deliveries = 0
        self.latencies = array("q")
        self.last_receive = {}


class Subscriber(WSListener):
    """One client: connect, subscribe, then count pushes and answer pings.

    Without a channel it stops after the connect reply: a client of the connect-rate measurement.
    """

    def __init__(self, token: str, channel: str | None, stats: Stats, ready: asyncio.Future[None]) -> None:
        self._connect = orjson.dumps({"id": 1, "connect": {"token": token}})
        self._subscribe = orjson.dumps({"id": 2, "subscribe": {"channel": channel}}) if channel else None
        self._stats = stats
        self._ready = ready

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, self._connect)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if frame.rsv1:  # permessage-deflate without context takeover: each message inflates alone
            payload = zlib.decompressobj(-15).decompress(payload + DEFLATE_TAIL)
        if payload.startswith(b'{"push"') and b'"id"' not in payload:
            self._stats.record(time.monotonic_ns(), STAMP.findall(payload))
            return
        for line in payload.split(b"\n"):
            self._line(transport, line)

    def _line(self, transport: WSTransport, line: bytes) -> None:
        if line == PONG:
            transport.send(WSMsgType.TEXT, PONG)
        elif line.startswith(b'{"push"'):
            if b'"pub"' in line:
                self._stats.record(time.monotonic_ns(), STAMP.findall(line))
            else:
                self._stats.errors.append(line.decode())
        elif line:
            self._reply(transport, orjson.loads(line))

    def _reply(self, transport: WSTransport, reply: dict[str, object]) -> None:
        if "error" in reply:
            self._fail(f"reply error: {reply}")
        elif reply.get("id") == 1 and self._subscribe is not None:
            transport.send(WSMsgType.TEXT, self._subscribe)
        elif reply.get("id") in (1, 2) and not self._ready.done():
            self._ready.set_result(None)

    def _fail(self, reason: str) -> None:
        self._stats.errors.append(reason)
        if not self._ready.done():
            self._ready.set_exception(RuntimeError(reason))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._stats.disconnects += 1
        self._fail("disconnected")


HANDSHAKE_TIMEOUT = 30.0
"""Seconds for one WebSocket handshake: picows' 5 s default fails thousands of handshakes in a row
on a host shared with other benchmarks (1-minute load average above 10 on 2 cores)."""


async def connect_subscribers(
    url: str,
    count: int,
    token: str,
    channel: str | None,
    stats: Stats,
    concurrency: int = 64,
    timeout: float = 60.0,
    deflate: bool = False,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> list[WSTransport]:
    """Opens ``count`` connections (subscribed to ``channel`` if given), ``concurrency`` at a time;
    with ``deflate`` they offer permessage-deflate."""
    headers = {"Sec-WebSocket-Extensions": "permessage-deflate"} if deflate else None
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one() -> WSTransport:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            transport, _ = await ws_connect(
                lambda: Subscriber(token, channel, stats, ready),
                url,
                enable_auto_pong=True,
                extra_headers=headers,
                websocket_handshake_timeout=handshake_timeout,
            )
            await ready
            return transport

    return list(await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout))


async def close_subscribers(transports: list[WSTransport]) -> None:
    for transport in transports:
        transport.disconnect()
    await asyncio.gather(*(t.wait_disconnected() for t in transports), return_exceptions=True)


class Publisher:
    """Publishes through the server HTTP API with Centrifugo's request shapes."""

    def __init__(self, api_url: str, api_key: str, channel: str) -> None:
        self._url = api_url.rstrip("/")
        self._headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
        self._channel = orjson.dumps(channel)
        # ssl=False: the WebTransport target's TCP port has TLS with a self-signed certificate
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, ssl=False))

    async def close(self) -> None:
        await self._session.close()

    def _params(self, stamp: int) -> bytes:
        return b'{"channel":%s,"data":{"t":%d}}' % (self._channel, stamp)

    async def publish(self, stamp: int | None = None) -> None:
        body = self._params(time.monotonic_ns() if stamp is None else stamp)
        await self._post("publish", body)

    async def batch(self, size: int) -> None:
        """``size`` publications in one ``batch`` call, all stamped with the time of the call."""
        one = b'{"publish":%s}' % self._params(time.monotonic_ns())
        await self._post("batch", b'{"commands":[%s]}' % b",".join([one] * size))

    async def concurrent(self, size: int) -> None:
        """``size`` simultaneous ``publish`` calls, all stamped with the same time."""
        stamp = time.monotonic_ns()
        await asyncio.gather(*(self.publish(stamp) for _ in range(size)))

    async def _post(self, method: str, body: bytes) -> None:
        async with self._session.post(f"{self._url}/{method}", data=body, headers=self._headers) as resp:
            text = await resp.read()
            if resp.status != 200 or b'"error"' in text:
                raise RuntimeError(f"{method}: HTTP {resp.status} {text[:200]!r}")
