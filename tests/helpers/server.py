"""A whole rotary server in the test's own event loop, and a JSON-protocol WebSocket client for it.

``await start_in_process(config)`` builds the server with ``build_server`` (real Node, ServerHooks,
WebSocket endpoint, HTTP API), starts the node and serves the external application with aiohttp's
TestServer on a free port. Clients connect with HMAC connection tokens signed with the config's
``client.token.hmac_secret_key``; API calls carry the config's ``http_api.key``.

``async with serving(config) as server:`` runs ``serve`` itself in the test's loop, listeners, read
deadlines and front door included, until the block ends.

``with rotary_process(directory, config) as server:`` runs the real thing instead: the ``rotary``
console script with a temporary JSON config and ``--http_server.port <free port>``, ready once it
logs that it is serving, stopped with SIGTERM on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
from aiohttp.test_utils import TestClient, TestServer

from helpers.env import START_LIMIT, free_port
from rotary.node.node import Node
from rotary.server.app import Server, build_server, serve
from rotary.server.config.schema import Config
from rotary.server.http_deadlines import CENTRIFUGO_HTTP_TIMEOUTS, HttpTimeouts

WAIT = 5.0
"""Seconds a test waits for a reply, a push or a close before failing."""


@contextlib.asynccontextmanager
async def serving(config: Config, timeouts: HttpTimeouts = CENTRIFUGO_HTTP_TIMEOUTS) -> AsyncIterator[Server]:
    """``serve`` of ``config`` (its ``http_server.port`` free) in this loop, once it listens;
    stopped when the block ends."""
    server = build_server(config, http_timeouts=timeouts)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(server, stop))
    try:
        async with asyncio.timeout(START_LIMIT):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", config.http_server.port)
                except OSError:
                    if task.done():
                        task.result()  # serve's own error
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield server
    finally:
        stop.set()
        await task


class WsClient:
    """A bidirectional JSON-protocol connection: commands with ids, pushes kept in arrival order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.id = ""
        self._pushes: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0

    async def command(self, **body: Any) -> dict[str, Any]:
        """Sends ``{"id": <next>, **body}`` and returns the reply with that id."""
        self._next_id += 1
        command_id = self._next_id
        await self.ws.send_str(orjson.dumps({"id": command_id, **body}).decode())
        async with asyncio.timeout(WAIT):
            while command_id not in self._replies:
                await self._receive()
        return self._replies.pop(command_id)

    async def push(self, kind: str) -> dict[str, Any]:
        """The oldest push holding ``kind`` (pub, subscribe, unsubscribe, ...) not returned before."""
        async with asyncio.timeout(WAIT):
            while True:
                for index, push in enumerate(self._pushes):
                    if kind in push:
                        return self._pushes.pop(index)
                await self._receive()

    async def close_code(self) -> int | None:
        """Reads until the server closes the connection; its close code."""
        async with asyncio.timeout(WAIT):
            while not self.ws.closed:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
        return self.ws.close_code

    async def _receive(self) -> None:
        msg = await self.ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"connection ended: {msg.type} {self.ws.close_code}")
        for line in msg.data.splitlines():
            if not line:
                continue
            frame = orjson.loads(line)
            if "push" in frame:
                self._pushes.append(frame["push"])
            elif "id" in frame:
                self._replies[frame["id"]] = frame
            else:  # an empty object is a ping; answer with a pong
                await self.ws.send_str("{}")


@dataclass
class InProcessServer:
    config: Config
    server: Server
    http: TestClient[Any, Any]
    sockets: list[WsClient] = field(default_factory=list)

    @property
    def node(self) -> Node:
        return self.server.node

    async def connect(
        self, user: str, *channels: str, session: aiohttp.ClientSession | None = None
    ) -> WsClient:
        """A client connected as ``user`` and subscribed (client-side) to ``channels``; through
        ``session`` when given (the test client's own pool holds 100 connections)."""
        prefix = self.config.websocket.handler_prefix
        if session is None:
            ws = await self.http.ws_connect(prefix, protocols=("centrifuge-json",))
        else:
            ws = await session.ws_connect(self.http.make_url(prefix), protocols=("centrifuge-json",))
        client = WsClient(ws)
        self.sockets.append(client)
        token = jwt.encode({"sub": user}, self.config.client.token.hmac_secret_key, algorithm="HS256")
        reply = await client.command(connect={"token": token})
        client.id = reply["connect"]["client"]
        for channel in channels:
            reply = await client.command(subscribe={"channel": channel})
            assert "error" not in reply, reply
        return client

    async def call(self, method: str, payload: Any, **headers: str) -> tuple[int, Any]:
        """POSTs ``payload`` as JSON to ``<api prefix>/<method>`` with the API key: status and body,
        the body decoded when it is JSON."""
        prefix = self.config.http_api.handler_prefix.rstrip("/")
        response = await self.http.post(
            f"{prefix}/{method}",
            data=orjson.dumps(payload),
            headers={"X-API-Key": self.config.http_api.key, **headers},
        )
        body = await response.read()
        return response.status, orjson.loads(body) if response.content_type == "application/json" else body

    async def close(self) -> None:
        for client in self.sockets:
            await client.ws.close()
        await self.node.shutdown(timeout=1.0)
        await self.http.close()
        await self.server.verifier.close()


async def start_in_process(config: Config, **build_options: Any) -> InProcessServer:
    """``build_options`` go to ``build_server`` (an injected clock, for instance)."""
    server = build_server(config, **build_options)
    await server.node.start()
    http: TestClient[Any, Any] = TestClient(TestServer(server.external))
    await http.start_server()
    return InProcessServer(config, server, http)


ROTARY = Path(sys.executable).with_name("rotary")
READY_LINE = "serving on"
START_TIMEOUT = START_LIMIT
"""An upper bound, not a margin: a start returns as soon as the server serves; on a loaded
2-core machine several workers importing everything have taken more than 15 s."""


@dataclass
class RotaryProcess:
    """One running ``rotary`` process on 127.0.0.1."""

    port: int
    config: dict[str, Any]
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The API base URL, as API clients (``cent``) take it."""
        prefix = str(self.config.get("http_api", {}).get("handler_prefix", "/api"))
        return self.http_url + prefix.rstrip("/")

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_ready(self) -> None:
        """Returns once the server logs that it serves; raises with its log if it exits or stalls."""
        deadline = time.monotonic() + START_TIMEOUT
        while READY_LINE not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"rotary exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rotary did not start within {START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)


@contextlib.contextmanager
def rotary_process(directory: Path, config: dict[str, Any], *args: str) -> Iterator[RotaryProcess]:
    """Runs ``rotary -c <directory>/config.json --http_server.port <free port> *args`` until exit."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "config.json"
    config_path.write_text(json.dumps(config))
    log_path = directory / "rotary.log"
    port = free_port()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(ROTARY), "-c", str(config_path), "--http_server.port", str(port), *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    server = RotaryProcess(port, config, process, log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
