"""WebTransport subscribers for the fan-out benchmark: aioquic HTTP/3 clients speaking the JSON client
protocol on one bidirectional stream, timing publications as loadgen's WebSocket subscribers do.

Each subscriber is its own QUIC connection: an extended CONNECT of a WebTransport session, then a
stream opened with the WEBTRANSPORT_STREAM signal, on which the connect and subscribe commands go
out and newline-delimited replies come back (https://centrifugal.dev/docs/transports/webtransport).
aioquic is pure Python per packet, so this generator costs far more CPU per delivery than picows;
the server's CPU per delivery is what the benchmark compares.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import Any

import orjson
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived
from loadgen import PONG, STAMP, Stats

WEBTRANSPORT_STREAM = 0x41
PATH = "/connection/webtransport"


class WtSubscriber(QuicConnectionProtocol):
    """One client: CONNECT, stream, connect and subscribe commands, then count pushes, answer pings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._h3 = H3Connection(self._quic, enable_webtransport=True)
        self._session: int | None = None
        self._stream: int | None = None
        self._tail = b""
        self._stats = Stats()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._subscribe = b""

    async def start(self, port: int, token: str, channel: str | None, stats: Stats) -> None:
        self._stats = stats
        self._subscribe = (
            orjson.dumps({"id": 2, "subscribe": {"channel": channel}}) + b"\n" if channel else b""
        )
        self._connect = orjson.dumps({"id": 1, "connect": {"token": token}}) + b"\n"
        self._session = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", b"CONNECT"),
            (b":protocol", b"webtransport"),
            (b":scheme", b"https"),
            (b":authority", f"127.0.0.1:{port}".encode()),
            (b":path", PATH.encode()),
        ]
        self._h3.send_headers(self._session, headers)
        self.transmit()
        await self._ready

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id == self._stream:
            self._data(event.data)
            return
        if isinstance(event, ConnectionTerminated):
            self._stats.disconnects += 1
            self._fail("disconnected")
            return
        for h3_event in self._h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_id == self._session:
                status = dict(h3_event.headers).get(b":status")
                if status != b"200":
                    self._fail(f"CONNECT answered {status!r}")
                    return
                assert self._session is not None
                self._stream = self._quic.get_next_available_stream_id()
                signal = encode_uint_var(WEBTRANSPORT_STREAM) + encode_uint_var(self._session)
                self._send(signal + self._connect)

    def _send(self, data: bytes) -> None:
        assert self._stream is not None
        self._quic.send_stream_data(self._stream, data)
        self.transmit()

    def _data(self, data: bytes) -> None:
        buffer = self._tail + data
        end = buffer.rfind(b"\n") + 1
        self._tail = buffer[end:]
        if not end:
            return
        chunk = buffer[:end]
        if chunk.startswith(b'{"push"') and b'"id"' not in chunk and b'"disconnect"' not in chunk:
            self._stats.record(time.monotonic_ns(), STAMP.findall(chunk))
            return
        for line in chunk.split(b"\n"):
            self._line(line)

    def _line(self, line: bytes) -> None:
        if line == PONG:
            self._send(PONG + b"\n")
        elif line.startswith(b'{"push"'):
            if b'"pub"' in line:
                self._stats.record(time.monotonic_ns(), STAMP.findall(line))
            else:
                self._stats.errors.append(line.decode())
        elif line:
            reply = orjson.loads(line)
            if "error" in reply:
                self._fail(f"reply error: {reply}")
            elif reply.get("id") == 1 and self._subscribe:
                self._send(self._subscribe)
            elif reply.get("id") in (1, 2) and not self._ready.done():
                self._ready.set_result(None)

    def _fail(self, reason: str) -> None:
        self._stats.errors.append(reason)
        if not self._ready.done():
            self._ready.set_exception(RuntimeError(reason))


async def connect_wt_subscribers(
    port: int,
    count: int,
    token: str,
    channel: str | None,
    stats: Stats,
    concurrency: int = 32,
    timeout: float = 120.0,
) -> contextlib.AsyncExitStack:
    """Opens ``count`` WebTransport subscribers; closing the returned stack closes them."""
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE, max_datagram_frame_size=65536
    )
    stack = contextlib.AsyncExitStack()
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            client = await stack.enter_async_context(
                connect("127.0.0.1", port, configuration=configuration, create_protocol=WtSubscriber)
            )
            assert isinstance(client, WtSubscriber)
            await client.start(port, token, channel, stats)

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout)
    except BaseException:
        await stack.aclose()
        raise
    return stack
