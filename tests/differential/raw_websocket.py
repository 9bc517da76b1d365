"""A WebSocket client on a bare socket, for the differential tests that compare what no client
library shows: extension answers, RSV bits, close frames and frames a library would refuse to send.
"""

from __future__ import annotations

import asyncio
import zlib

import yarl
from helpers.raw_upgrade import raw_upgrade

from differential.runner import Target


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.head = head

    @classmethod
    async def upgrade(
        cls, target: Target, offer: str | None, path: str = "/connection/websocket"
    ) -> RawSocket:
        url = yarl.URL(target.ws_base + path)
        assert url.host is not None and url.port is not None
        return cls(*await raw_upgrade(url.host, url.port, url.path, offer))

    def extensions(self) -> list[str]:
        lines = self.head.decode().split("\r\n")
        return [
            line.split(":", 1)[1].strip()
            for line in lines
            if line.lower().startswith("sec-websocket-extensions:")
        ]

    def send(self, payload: bytes, compress: bool) -> None:
        first = 0x81
        if compress:
            deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = (deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
            first |= 0x40
        size = len(payload)
        header = bytes([first, 0x80 | (size if size < 126 else 126)])
        if size >= 126:
            header += size.to_bytes(2)
        self.writer.write(header + b"\x00\x00\x00\x00" + payload)

    async def frame(self) -> tuple[int, bytes]:
        """The first byte (FIN, RSV1, opcode) and the payload, inflated when RSV1 is set."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2))
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8))
        payload = await self.reader.readexactly(size)
        if first & 0x40:
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        return first, payload

    def close(self) -> None:
        self.writer.close()

    def send_frame(self, first: int, payload: bytes, masked: bool = True) -> None:
        """One frame as given: ``first`` is FIN, RSV and opcode; a zero mask leaves the payload as is."""
        size = len(payload)
        mask = 0x80 if masked else 0
        if size < 126:
            header = bytes([first, mask | size])
        elif size < 1 << 16:
            header = bytes([first, mask | 126]) + size.to_bytes(2)
        else:
            header = bytes([first, mask | 127]) + size.to_bytes(8)
        self.writer.write(header + (b"\x00\x00\x00\x00" if masked else b"") + payload)

    async def ending(self) -> tuple[int, bytes] | str:
        """The close frame's first byte and payload (code and reason), or how the connection ended
        without one."""
        try:
            first, data = await self.frame()
        except asyncio.IncompleteReadError:
            return "closed without a close frame"
        return first, data
