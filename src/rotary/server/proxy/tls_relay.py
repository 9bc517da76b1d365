"""TLS without verification towards a GRPC proxy (``grpc.tls.insecure_skip_verify``).

Centrifugo's Go client can encrypt without verifying the backend's certificate; grpcio has no such
switch (its TLS always verifies a chain and a name). Trusting whatever certificate the backend
shows first would not do: a rotated or CA-issued certificate would then fail, an expired one too.
So grpcio speaks plaintext HTTP/2 to this relay over a Unix socket in Linux's abstract namespace (a
name, not a file: nothing is left on disk when the process is killed), which accepts connections
from this process alone (the peer's pid, by ``SO_PEERCRED``); the relay carries each connection to
the backend over TLS made by Python's ``ssl`` with verification off, ALPN ``h2``, the SNI of
``server_name`` and the client certificate when one is set. On the network the traffic is encrypted
and unverified, as with Centrifugo. See https://centrifugal.dev/docs/server/proxy#grpc-proxy
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import ssl
import struct
from typing import Final

logger = logging.getLogger("rotary.server.proxy")

CHUNK: Final = 65536
BACKLOG: Final = 128


PEER_CREDENTIALS: Final = struct.Struct("3i")
"""``struct ucred``: pid, uid, gid."""


class TlsRelay:
    """One listening abstract Unix socket; every connection to it from this process becomes a TLS
    connection to ``host:port``. ``target`` is its address as grpcio spells it."""

    def __init__(self, target: str, context: ssl.SSLContext, server_name: str) -> None:
        self._host, self._port = split_target(target)
        self._context = context
        context.set_alpn_protocols(["h2"])  # GRPC servers require HTTP/2 by ALPN
        self._server_name = server_name or self._host
        name = f"rotary-grpc-tls-{os.getpid()}-{secrets.token_hex(8)}"
        self.target = f"unix-abstract:{name}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(f"\0{name}")
        listener.listen(BACKLOG)  # connections queue here until the server below accepts them
        listener.setblocking(False)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server = asyncio.ensure_future(asyncio.start_unix_server(self._relay, sock=listener))

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if not from_this_process(writer.get_extra_info("socket")):
                logger.error("GRPC proxy TLS relay refused a connection from another process")
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self._host, self._port, ssl=self._context, server_hostname=self._server_name
                )
            except (OSError, ssl.SSLError) as exc:  # grpcio sees the connection close: UNAVAILABLE
                logger.error("GRPC proxy TLS connection to %s:%s failed: %r", self._host, self._port, exc)
                return
            self._writers.add(upstream_writer)
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                self._writers.discard(upstream_writer)
                upstream_writer.close()
        finally:
            self._writers.discard(writer)
            writer.close()

    async def close(self) -> None:
        server = await self._server
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()


def from_this_process(sock: socket.socket | None) -> bool:
    """Whether the peer of the Unix socket ``sock`` is this process: an abstract socket has no
    file mode, so any process of the network namespace could otherwise reach the backend with
    rotary's client certificate."""
    if sock is None:
        return False
    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEER_CREDENTIALS.size)
    pid, _uid, _gid = PEER_CREDENTIALS.unpack(credentials)
    return bool(pid == os.getpid())


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes one way until either side ends; then both ends close (TLS has no half-close)."""
    with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    writer.close()


def split_target(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; GRPC's default port 443 when none is given."""
    host, colon, port = target.rpartition(":")
    if not colon or host.endswith(":") or (host.startswith("[") != host.endswith("]")):
        return target.strip("[]"), 443
    return host.strip("[]"), int(port)
