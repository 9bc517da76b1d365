"""A WebSocket upgrade written by hand on a bare socket, for the tests that look at what client
libraries hide: the answer's head, extension bits, frames a library would refuse to send."""

from __future__ import annotations

import asyncio
import base64


async def raw_upgrade(
    host: str, port: int, path: str, offer: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Sends the upgrade request (offering ``offer`` as Sec-WebSocket-Extensions when given) and
    returns the stream and the answer's head."""
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    extension = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer is not None else ""
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{extension}\r\n"
        ).encode()
    )
    return reader, writer, await reader.readuntil(b"\r\n\r\n")
