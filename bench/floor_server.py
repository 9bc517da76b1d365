"""The floor of the fan-out benchmark: the least work a Python broadcast server can do per delivery.

It speaks just enough of the client protocol (connect and subscribe replies, JSON pushes) for the
same load generator to drive it, and it publishes the way a server should: the push is encoded once,
framed once, and that one ``bytes`` object is written to every subscriber's socket. WebSockets are
served by picows; publications arrive over HTTP on a second port (aiohttp), shaped like the
Centrifugo API (https://centrifugal.dev/docs/server/server_api) so the same publisher drives both.

Run: ``python bench/floor_server.py`` — prints ``{"ws_port": N, "api_port": M}`` once listening.
"""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import sys
from typing import Any

import orjson
from aiohttp import web
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

CONNECT_REPLY = b'{"id":%d,"connect":{"client":"floor","version":"0.0.0","ping":0,"pong":false}}'
SUBSCRIBE_REPLY = b'{"id":%d,"subscribe":{}}'


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame, as a server sends it (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class Channel:
    """One channel's subscribers and its offset counter."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.subscribers: set[asyncio.Transport] = set()
        self.offset = 0

    def publish(self, data: Any) -> int:
        self.offset += 1
        push = b'{"push":{"channel":%s,"pub":{"data":%s,"offset":%d}}}' % (
            orjson.dumps(self.name),
            orjson.dumps(data),
            self.offset,
        )
        frame = text_frame(push)
        for sock in self.subscribers:
            sock.write(frame)
        return self.offset


class Subscriber(WSListener):
    """Answers connect and subscribe commands; everything it receives later is ignored."""

    def __init__(self, channels: dict[str, Channel]) -> None:
        self._channels = channels
        self._joined: list[Channel] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        for line in frame.get_payload_as_bytes().split(b"\n"):
            if line.strip():
                self._command(transport, orjson.loads(line))

    def _command(self, transport: WSTransport, command: dict[str, Any]) -> None:
        cid = int(command.get("id", 0))
        if "connect" in command:
            transport.send(WSMsgType.TEXT, CONNECT_REPLY % cid)
        elif "subscribe" in command:
            name = command["subscribe"]["channel"]
            channel = self._channels.setdefault(name, Channel(name))
            channel.subscribers.add(transport.underlying_transport)
            self._joined.append(channel)
            transport.send(WSMsgType.TEXT, SUBSCRIBE_REPLY % cid)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for channel in self._joined:
            channel.subscribers.discard(transport.underlying_transport)


def api_app(channels: dict[str, Channel]) -> web.Application:
    """``/api/publish`` and ``/api/batch`` with Centrifugo's request and reply shapes (publish only)."""

    def publish(params: dict[str, Any]) -> dict[str, Any]:
        name = params["channel"]
        channel = channels.setdefault(name, Channel(name))
        return {"offset": channel.publish(params["data"])}

    async def publish_handler(request: web.Request) -> web.Response:
        result = publish(orjson.loads(await request.read()))
        return web.Response(body=orjson.dumps({"result": result}), content_type="application/json")

    async def batch_handler(request: web.Request) -> web.Response:
        commands = orjson.loads(await request.read())["commands"]
        replies = [{"publish": publish(command["publish"])} for command in commands]
        return web.Response(body=orjson.dumps({"replies": replies}), content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/publish", publish_handler)
    app.router.add_post("/api/batch", batch_handler)
    return app


async def main() -> None:
    channels: dict[str, Channel] = {}

    def listener(request: WSUpgradeRequest) -> WSListener:
        return Subscriber(channels)

    ws_server = await ws_create_server(listener, "127.0.0.1", 0, backlog=4096)
    runner = web.AppRunner(api_app(channels), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api_port = runner.addresses[0][1]
    ws_port = ws_server.sockets[0].getsockname()[1]
    print(json.dumps({"ws_port": ws_port, "api_port": api_port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    ws_server.close()
    await runner.cleanup()


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main())
    sys.exit(0)
