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


KEY = base64.b64encode(b"0123456789abcdef").decode()


def upgrade(*headers: str, version: str = "1.1", key: str = KEY) -> str:
    lines = [
        f"GET {{path}} HTTP/{version}",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


WELL_FORMED = {
    "plain": upgrade(),
    "http/1.0": upgrade(version="1.0"),
    "json subprotocol": upgrade("Sec-WebSocket-Protocol: centrifuge-json"),
    "protobuf subprotocol": upgrade("Sec-WebSocket-Protocol: other, centrifuge-protobuf,centrifuge-json"),
    "two protocol headers": upgrade(
        "Sec-WebSocket-Protocol: centrifuge-protobuf", "Sec-WebSocket-Protocol: centrifuge-json"
    ),
    "deflate offer": upgrade("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"),
    "deflate and protocol": upgrade(
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10",
        "Sec-WebSocket-Protocol: centrifuge-json",
    ),
    "other extension": upgrade("Sec-WebSocket-Extensions: x-webkit-deflate-frame"),
    "version 8": upgrade().replace("Version: 13", "Version: 8"),
    "mixed case upgrade": upgrade().replace("Upgrade: websocket", "Upgrade:  WebSocket "),
    "keep-alive, upgrade": upgrade().replace("Connection: Upgrade", "Connection: keep-alive, Upgrade"),
    "key with junk": upgrade(key=KEY[:4] + "!" + KEY[4:]),
    "unknown subprotocol": upgrade("Sec-WebSocket-Protocol: mqtt"),
}
REFUSED = {
    "no upgrade header": upgrade().replace("Upgrade: websocket\r\n", ""),
    "upgrade to something else": upgrade().replace("Upgrade: websocket", "Upgrade: h2c"),
    "no connection upgrade": upgrade().replace("Connection: Upgrade", "Connection: keep-alive"),
    "version 12": upgrade().replace("Version: 13", "Version: 12"),
    "no version": upgrade().replace("Sec-WebSocket-Version: 13\r\n", ""),
    "no key": upgrade().replace(f"Sec-WebSocket-Key: {KEY}\r\n", ""),
    "short key": upgrade(key=base64.b64encode(b"short").decode()),
    "key not base64": upgrade(key="AAAA" * 5 + "A"),
}
