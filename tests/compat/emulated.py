"""A JSON-protocol client of the emulated transports, on aiohttp: the stream from one endpoint,
commands through ``POST /emulation`` (of the same node or another one).

It reads the stream as the SDK does: HTTP streaming as JSON lines, SSE as events whose ``data:``
lines are JSON replies. See https://centrifugal.dev/docs/transports/http_stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

WAIT = 10.0
JSON = {"Content-Type": "application/json"}
"""aiohttp labels a bytes body application/octet-stream, which selects Protobuf."""


class EmulatedClient:
    """One connection over ``http_stream`` or ``sse``; ``messages`` keeps every reply and push read."""

    def __init__(self, session: aiohttp.ClientSession, response: aiohttp.ClientResponse, sse: bool) -> None:
        self._session = session
        self.response = response
        self._sse = sse
        self.messages: list[dict[str, Any]] = []
        self.ended = False
        self.session_id = ""
        self.node_id = ""
        self.emulation_url = ""
        self._next_id = 1

    @classmethod
    async def open(
        cls, base_url: str, transport: str, connect: dict[str, Any], emulation_url: str = ""
    ) -> EmulatedClient:
        """Connects (command id 1) and waits for the connect reply; raises if the stream ends first."""
        session = aiohttp.ClientSession()
        first = orjson.dumps({"id": 1, "connect": connect})
        url = f"{base_url}/connection/{transport}"
        try:
            if transport == "sse":
                response = await session.get(url, params={"cf_connect": first.decode()})
            else:
                response = await session.post(url, data=first, headers=JSON)
            client = cls(session, response, transport == "sse")
            client.emulation_url = emulation_url or f"{base_url}/emulation"
            reply = await client.reply(1)
        except BaseException:
            await session.close()
            raise
        client.session_id, client.node_id = reply["connect"]["session"], reply["connect"]["node"]
        return client

    async def _read(self) -> None:
        """Reads the next message of the stream into ``messages``; sets ``ended`` at its end."""
        line = await self.response.content.readline()
        if not line:
            self.ended = True
            return
        line = line.strip()
        if self._sse:
            if not line.startswith(b"data: "):
                return
            line = line[len(b"data: ") :]
        if line:
            self.messages.append(orjson.loads(line))

    async def until(self, check: Any, what: str) -> dict[str, Any]:
        """The first message passing ``check``, reading the stream until it comes."""
        async with asyncio.timeout(WAIT):
            while True:
                for message in self.messages:
                    if check(message):
                        return message
                if self.ended:
                    raise AssertionError(f"the stream ended before {what}: {self.messages}")
                await self._read()

    async def reply(self, command_id: int) -> dict[str, Any]:
        return await self.until(lambda m: m.get("id") == command_id, f"reply {command_id}")

    async def send(self, **command: Any) -> int:
        """Posts one command to the emulation endpoint; the HTTP status."""
        self._next_id += 1
        data = orjson.dumps({"id": self._next_id, **command}).decode()
        body = {"session": self.session_id, "node": self.node_id, "data": data}
        async with self._session.post(self.emulation_url, json=body) as response:
            return response.status

    async def command(self, **command: Any) -> dict[str, Any]:
        """Sends one command and returns its reply."""
        status = await self.send(**command)
        assert status == 204, status
        return await self.reply(self._next_id)

    async def end(self) -> list[dict[str, Any]]:
        """Reads to the end of the stream; every message read."""
        async with asyncio.timeout(WAIT):
            while not self.ended:
                await self._read()
        return self.messages

    async def close(self) -> None:
        self.response.close()
        await self._session.close()
