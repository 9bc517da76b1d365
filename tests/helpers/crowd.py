"""A crowd of WebSocket clients in a process of its own, driven over its stdin by a test.

A soak of 10,000 connections cannot keep both ends of every connection in one process: that takes
more than 20,000 descriptors, the hard limit here. The server under test stays in the test's
process (where its tasks and timers can be counted) and the clients live in this one.

    python -m helpers.crowd URL SECRET CHANNEL

reads one command per line and answers each with one line once it is done:

    join N      connects N more clients (as users u0, u1, ...), each subscribed to CHANNEL
    replace K   closes K clients picked at random and connects K new ones, all at once;
                answers with the seconds it took
    leave       closes every client
    quit        closes every client and exits

Every client speaks the JSON protocol (connect with an HS256 token, then subscribe), reads what the
server pushes, so no socket backs up with publications, and answers pings.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import Any

import aiohttp
import jwt
import orjson

CONNECT_BATCH = 100
"""Clients connecting at once while a crowd is joined."""


class Crowd:
    def __init__(self, url: str, secret: str, channel: str) -> None:
        self._url = url
        self._secret = secret
        self._channel = channel
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._clients: list[tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]] = []
        self._joined = 0
        self._rng = random.Random(7)

    async def join(self, count: int) -> None:
        for start in range(0, count, CONNECT_BATCH):
            batch = min(CONNECT_BATCH, count - start)
            self._clients.extend(await asyncio.gather(*(self._one() for _ in range(batch))))

    async def replace(self, count: int) -> float:
        began = time.monotonic()
        leaving = [self._clients.pop(self._rng.randrange(len(self._clients))) for _ in range(count)]
        await asyncio.gather(*(self._close(client) for client in leaving))
        self._clients.extend(await asyncio.gather(*(self._one() for _ in range(count))))
        return time.monotonic() - began

    async def leave(self) -> None:
        leaving, self._clients = self._clients, []
        await asyncio.gather(*(self._close(client) for client in leaving))

    async def close(self) -> None:
        await self.leave()
        await self._session.close()

    async def _one(self) -> tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]:
        user = f"u{self._joined}"
        self._joined += 1
        token = jwt.encode({"sub": user}, self._secret, algorithm="HS256")
        ws = await self._session.ws_connect(self._url, protocols=("centrifuge-json",))
        await ws.send_bytes(orjson.dumps({"id": 1, "connect": {"token": token}}))
        await _reply(ws, 1)
        await ws.send_bytes(orjson.dumps({"id": 2, "subscribe": {"channel": self._channel}}))
        await _reply(ws, 2)
        return ws, asyncio.create_task(_drain(ws))

    @staticmethod
    async def _close(client: tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]) -> None:
        ws, reader = client
        reader.cancel()
        await ws.close()


async def _reply(ws: aiohttp.ClientWebSocketResponse, command_id: int) -> dict[str, Any]:
    """The reply to ``command_id``; an error reply or a closed connection fails the crowd."""
    while True:
        message = await ws.receive()
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise RuntimeError(f"connection ended before reply {command_id}: {message}")
        for line in message.data.splitlines() if isinstance(message.data, str) else [message.data]:
            reply: dict[str, Any] = orjson.loads(line)
            if reply.get("id") == command_id:
                if "error" in reply:
                    raise RuntimeError(f"command {command_id} failed: {reply}")
                return reply


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Reads what the server pushes and answers its pings (an empty command, ``{}``), as the SDKs
    do: a client that stays quiet is disconnected with 3012 once client.ping_interval passed."""
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT and "{}" in message.data.splitlines():
            await ws.send_str("{}")


async def main(url: str, secret: str, channel: str) -> None:
    crowd = Crowd(url, secret, channel)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not line or line[0] == "quit":
                break
            answer = ""
            if line[0] == "join":
                await crowd.join(int(line[1]))
            elif line[0] == "replace":
                answer = f" {await crowd.replace(int(line[1])):.3f}"
            elif line[0] == "leave":
                await crowd.leave()
            print("ok" + answer, flush=True)
    finally:
        await crowd.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
