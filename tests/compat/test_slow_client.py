"""A client that stops reading is disconnected with 3008 "slow"; the server and other clients go on.

Rotary writes publications straight into each connection's asyncio transport buffer; once that
buffer holds more than ``client.queue_max_size`` bytes (1 MiB by default) the connection is closed
with 3008 (https://centrifugal.dev/docs/server/configuration#clientqueue_max_size). The slow client
here is a raw WebSocket on a plain socket with a tiny receive buffer that never reads while 50 MB
are published to its channel; a centrifuge-python client on the same channel gets all of it. Since
the slow client never reads, its close frame cannot reach it: the server must drop the socket once
the close frame has waited ``websocket.write_timeout``, and its log says the client was closed
with 3008.

Memory bound: what the server may hold for the slow client is ``queue_max_size`` plus the one
publication frame that crossed it; the channel keeps no history; the SDK client is fed no faster
than it reads (a few publications in flight). Allowing for allocator slack around 100 KB messages,
the server's peak RSS may rise by at most ``RSS_GROWTH_LIMIT`` above where it stood after a
warm-up, far below the 50 MB a server that kept buffering for the slow client would add.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import DEFAULT_CONFIG, RotaryServer

pytestmark = pytest.mark.compat

PUBLICATIONS = 500
PUBLICATION_SIZE = 100_000
WARM_UP = 20
IN_FLIGHT = 4
"""Publications sent ahead of what the SDK client has received: it is fed, not flooded."""

QUEUE_MAX_SIZE = 1 << 20
RSS_GROWTH_LIMIT = 30 << 20
RECEIVE_BUFFER = 4096
SOCKET_TIMEOUT = 10.0
WRITE_TIMEOUT = 1.0
"""``websocket.write_timeout`` (its default): how long a close frame may wait for a peer to take it."""
TCP_ESTABLISHED = 1
"""The state of an open connection in Linux's ``/proc/net/tcp``."""

FIREHOSE_NAMESPACE: dict[str, Any] = {"name": "firehose", "allow_subscribe_for_client": True}


class RawWebSocket:
    """A JSON-protocol WebSocket client on a blocking socket: it reads only when told to."""

    def __init__(self, port: int, path: str = "/connection/websocket", headers: str = "") -> None:
        """``headers``: more request header lines, each ending with CRLF."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before connecting, so the advertised window stays small too.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.sock.settimeout(SOCKET_TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self._buffer = b""
        self._handshake(port, path, headers)

    def _handshake(self, port: int, path: str, headers: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n{headers}"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: centrifuge-json\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the socket")
        self._buffer += chunk

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._fill()
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def send(self, opcode: int, payload: bytes) -> None:
        """One masked frame, as a client must send."""
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        else:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def command(self, **body: Any) -> None:
        self.send(0x1, orjson.dumps(body))

    def frame(self) -> tuple[int, bytes]:
        """The next server frame (servers do not mask): opcode and payload."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return first & 0x0F, self._take(length)

    def reply(self, command_id: int) -> dict[str, Any]:
        while True:
            opcode, payload = self.frame()
            assert opcode == 0x1, (opcode, payload)
            for line in payload.splitlines():
                message: dict[str, Any] = orjson.loads(line)
                if message.get("id") == command_id:
                    return message

    def dropped_by_server(self, server_port: int) -> bool:
        """Whether the server closed its end of this connection.

        Asked of the kernel, not of the socket: a server that gives up on a peer that does not read
        closes a socket whose send queue is still full, so the peer sees neither a FIN nor a reset
        until it reads; the server's end leaves ESTABLISHED at once.
        """
        client_port = self.sock.getsockname()[1]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, state = line.split()[1:4]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                return int(state, 16) != TCP_ESTABLISHED
        return True

    def close(self) -> None:
        self.sock.close()


def memory_kib(pid: int, field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (resident at peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def blob(number: int) -> dict[str, Any]:
    return {"n": number, "blob": "x" * PUBLICATION_SIZE}


async def test_slow_client_is_disconnected_and_others_keep_receiving(
    start_rotary: Callable[[dict[str, Any]], RotaryServer],
    sdk_clients: Callable[..., Any],
    make_token: Callable[..., str],
) -> None:
    namespaces = [*DEFAULT_CONFIG["channel"]["namespaces"], FIREHOSE_NAMESPACE]
    server = start_rotary(
        {"client": {"queue_max_size": QUEUE_MAX_SIZE}, "channel": {"namespaces": namespaces}}
    )
    channel = "firehose:" + os.urandom(6).hex()
    pid = server.process.process.pid

    slow = RawWebSocket(server.port)
    try:
        slow.command(id=1, connect={"token": make_token({"sub": "slow"})})
        slow_id = slow.reply(1)["connect"]["client"]
        slow.command(id=2, subscribe={"channel": channel})
        assert "subscribe" in slow.reply(2)
        assert not slow.dropped_by_server(server.port)  # the kernel's table does list it, as open

        sdk = sdk_clients(server, token=make_token({"sub": "reader"}))
        await sdk.client.connect()
        await sdk.client.ready(timeout=5)
        sub, events = sdk.subscription(channel)
        await sub.subscribe()
        await sub.ready(timeout=5)

        received: list[int] = []

        async def feed(first: int, last: int) -> None:
            for number in range(first, last):
                while number - len(received) >= IN_FLIGHT:
                    ctx = await events.next("on_publication", timeout=SOCKET_TIMEOUT)
                    received.append(ctx.pub.data["n"])
                await server.api("publish", {"channel": channel, "data": blob(number)})

        await feed(0, WARM_UP)
        baseline = memory_kib(pid, "VmRSS")
        await feed(WARM_UP, WARM_UP + PUBLICATIONS)
        while len(received) < WARM_UP + PUBLICATIONS:
            ctx = await events.next("on_publication", timeout=SOCKET_TIMEOUT)
            received.append(ctx.pub.data["n"])
        peak = memory_kib(pid, "VmHWM")

        assert received == list(range(WARM_UP + PUBLICATIONS))
        assert sdk.events.names().count("on_connecting") == 1  # never dropped
        growth = (peak - baseline) << 10
        print(f"RSS after warm-up {baseline} KiB, peak {peak} KiB, growth {growth >> 20} MiB")
        assert growth < RSS_GROWTH_LIMIT

        # The slow client never read: its close frame cannot reach it, so the server drops the socket
        # once the close frame has waited the write timeout, and says why in its log.
        async with asyncio.timeout(WRITE_TIMEOUT + SOCKET_TIMEOUT):
            while not slow.dropped_by_server(server.port):
                await asyncio.sleep(0.05)
        closing = f"closing client connection: client {slow_id}, user 'slow', code 3008, reason slow"
        assert closing in server.log()
    finally:
        slow.close()
