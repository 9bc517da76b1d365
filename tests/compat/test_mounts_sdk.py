"""rotary mounted inside a host application, driven by centrifuge-python through the host's login.

Each mount runs in a real server on a free port: the ASGI app inside Starlette under uvicorn, the
aiohttp sub-app inside an aiohttp application. The host logs a user in with its own session cookie;
``on_connecting`` finds the login through ``ConnectionInfo.request`` (the ASGI scope, the aiohttp
request). Then the SDK subscribes, publishes, and recovers what was published while a relay had
dropped its connection. Bad input gets the standalone server's answers.
See https://centrifugal.dev/docs/transports/client_api and docs/embedding.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import centrifuge
import orjson
import pytest
import websockets
from aiohttp import web
from conftest import EventLog, unique_channel
from helpers.env import free_port
from helpers.mount_hosts import (
    HISTORY,
    LOGIN_REQUIRED,
    PREFIX,
    AiohttpSessions,
    HostLoginHooks,
    Relay,
    aiohttp_host,
    scope_user,
    serving_uvicorn,
    starlette_host,
)
from helpers.sites import serving_aiohttp
from test_bad_input import EVIL, JSON_BODY, TOO_LARGE, UPGRADE
from test_slow_client import RawWebSocket

from rotary.node.node import Node
from rotary.transports.mounts.asgi_websocket import AsgiWebSocketTransport

pytestmark = pytest.mark.compat

MAX_FLOOD = 60_000_000
"""Bytes published at most to a client that never reads (queue_max_size is 1 MiB)."""


@dataclass
class Host:
    """A host application serving on ``port``, rotary mounted under PREFIX, and its node."""

    kind: str
    port: int
    node: Node
    hooks: HostLoginHooks

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, port: int | None = None) -> str:
        return f"ws://127.0.0.1:{port or self.port}{PREFIX}/connection/websocket"

    async def login(self, user: str) -> str:
        """Logs ``user`` in through the host's own route; the Cookie header its session needs."""
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}/login", params={"user": user}) as response:
                assert response.status == 200, await response.text()
                cookies = response.cookies
        return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


UVICORN_MODES: dict[str, dict[str, Any]] = {
    "asgi": {},
    "asgi-direct": {"ws_per_message_deflate": False},
    "asgi-wsproto": {"ws": "wsproto"},
}
"""uvicorn's settings per ASGI host. Its defaults (``websockets-sansio``, permessage-deflate for the
SDK, which offers it) and ``wsproto`` take the mount's plain ASGI path; without deflate its writes
go past uvicorn's ``send`` (transports/mounts/asgi_uvicorn.py). Each host serves the whole suite."""


@pytest.fixture(params=[*UVICORN_MODES, "aiohttp"])
async def host(request: pytest.FixtureRequest) -> AsyncIterator[Host]:
    kind: str = request.param
    port = free_port()
    if kind in UVICORN_MODES:
        hooks = HostLoginHooks(scope_user)
        node = Node(hooks=hooks)
        await node.start()
        async with serving_uvicorn(starlette_host(node), port, **UVICORN_MODES[kind]):
            yield Host(kind, port, node, hooks)
            await node.shutdown(5)
    else:
        sessions = AiohttpSessions()
        hooks = HostLoginHooks(sessions.user_of)
        node = Node(hooks=hooks)
        await node.start()
        async with serving_aiohttp(aiohttp_host(node, sessions), port):
            yield Host(kind, port, node, hooks)
            await node.shutdown(5)


@pytest.fixture
async def clients() -> AsyncIterator[list[centrifuge.Client]]:
    made: list[centrifuge.Client] = []
    yield made
    for client in made:
        await client.disconnect()
    pending = asyncio.all_tasks() - {asyncio.current_task()}
    if pending:
        await asyncio.wait(pending, timeout=2)


def sdk(
    made: list[centrifuge.Client], url: str, cookie: str = "", use_protobuf: bool = False
) -> tuple[centrifuge.Client, EventLog]:
    events = EventLog()
    headers = {"Cookie": cookie} if cookie else None
    client = centrifuge.Client(
        url, events=events, use_protobuf=use_protobuf, headers=headers, proxy=None, max_reconnect_delay=0.5
    )
    made.append(client)
    return client, events


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
async def test_connect_with_the_host_login_subscribe_publish(
    host: Host, clients: list[centrifuge.Client], use_protobuf: bool
) -> None:
    cookie = await host.login("alice")
    client, _ = sdk(clients, host.ws_url(), cookie, use_protobuf)
    await client.connect()
    await client.ready(timeout=5)
    request = host.hooks.requests[-1]
    if host.kind in UVICORN_MODES:
        assert isinstance(request, dict) and request["type"] == "websocket"
        assert request["session"] == {"user": "alice"}
        (transport,) = [c.transport for c in host.node.hub.clients.values()]
        assert isinstance(transport, AsgiWebSocketTransport)
        assert (transport.direct is not None) is (host.kind == "asgi-direct")
    else:
        assert isinstance(request, web.Request) and request.path == f"{PREFIX}/connection/websocket"
    channel = unique_channel()
    sub_events = EventLog()
    sub = client.new_subscription(channel, events=sub_events)
    await sub.subscribe()
    await sub.ready(timeout=5)
    data: Any = orjson.dumps({"text": "hi"}) if use_protobuf else {"text": "hi"}
    await sub.publish(data)
    publication = await sub_events.next("on_publication")
    assert publication.pub.data == data
    assert publication.pub.info.user == "alice"
    await host.node.publish(channel, orjson.dumps({"from": "server"}), HISTORY)
    from_server = await sub_events.next("on_publication")
    received = orjson.loads(from_server.pub.data) if use_protobuf else from_server.pub.data
    assert received == {"from": "server"}


async def test_no_host_login_no_connection(host: Host, clients: list[centrifuge.Client]) -> None:
    client, events = sdk(clients, host.ws_url(), "")
    await client.connect()
    disconnected = await events.next("on_disconnected")
    assert (disconnected.code, disconnected.reason) == (LOGIN_REQUIRED.code, LOGIN_REQUIRED.reason)
    assert host.hooks.requests[-1] is not None


async def test_recovery_after_a_dropped_connection(host: Host, clients: list[centrifuge.Client]) -> None:
    """The relay drops the SDK's connection; what the host publishes meanwhile comes back by recovery."""
    relay = Relay(host.port)
    await relay.start()
    try:
        cookie = await host.login("bob")
        client, events = sdk(clients, host.ws_url(relay.port), cookie)
        await client.connect()
        await client.ready(timeout=5)
        channel = unique_channel()
        sub_events = EventLog()
        sub = client.new_subscription(channel, events=sub_events)
        await sub.subscribe()
        await sub.ready(timeout=5)
        await host.node.publish(channel, b'{"n": 1}', HISTORY)
        assert (await sub_events.next("on_publication")).pub.data == {"n": 1}
        relay.cut(hold=True)
        await events.next("on_connecting", timeout=10)  # the SDK noticed and is reconnecting
        await host.node.publish(channel, b'{"n": 2}', HISTORY)
        await host.node.publish(channel, b'{"n": 3}', HISTORY)
        relay.release()
        resubscribed = await sub_events.next("on_subscribed", timeout=15)
        resubscribed = await sub_events.next("on_subscribed", timeout=15)
        assert resubscribed.was_recovering and resubscribed.recovered
        recovered = [(await sub_events.next("on_publication")).pub.data for _ in range(2)]
        assert recovered == [{"n": 2}, {"n": 3}]
    finally:
        await relay.stop()


JUNK: list[tuple[str, str, dict[str, str], bytes, int]] = [
    ("GET", "/connection/websocket", {**EVIL, **UPGRADE}, b"", 403),
    ("GET", "/connection/websocket", {}, b"", 400),
    ("POST", "/connection/http_stream", JSON_BODY, TOO_LARGE, 413),
    ("POST", "/connection/sse", JSON_BODY, TOO_LARGE, 413),
    ("GET", "/connection/sse", {}, b"", 400),
    ("PUT", "/connection/http_stream", JSON_BODY, b"{}", 405),
    ("POST", "/emulation", JSON_BODY, TOO_LARGE, 413),
    ("POST", "/emulation", JSON_BODY, b"{not", 400),
    ("POST", "/emulation", JSON_BODY, b'{"session": "nope", "node": "nope", "data": {}}', 404),
]
"""(method, path under the mount, headers, body, status): as test_bad_input's standalone server."""


async def test_junk_gets_the_standalone_answers(host: Host, clients: list[centrifuge.Client]) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path, headers, body, status in JUNK:
            url = host.url + PREFIX + path
            async with session.request(method, url, headers=headers, data=body) as response:
                assert response.status == status, (method, path, response.status, await response.text())
    cookie = await host.login("carol")
    async with websockets.connect(host.ws_url(), additional_headers={"Cookie": cookie}) as ws:
        await ws.send(b"x" * 70000)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    client, _ = sdk(clients, host.ws_url(), cookie)
    await client.connect()
    await client.ready(timeout=5)


async def test_a_client_that_stops_reading_is_disconnected_with_3008(
    host: Host, clients: list[centrifuge.Client], caplog: pytest.LogCaptureFixture
) -> None:
    """A WebSocket client with a tiny receive buffer that never reads: once the node holds more than
    ``queue_max_size`` bytes for it (behind the ASGI server's send, or in aiohttp's buffer), it is
    closed with 3008 and leaves the hub; the host goes on serving."""
    caplog.set_level(logging.DEBUG, logger="rotary.client")
    cookie = await host.login("slow")
    path = f"{PREFIX}/connection/websocket"
    slow = await asyncio.to_thread(RawWebSocket, host.port, path, f"Cookie: {cookie}\r\n")
    try:
        channel = unique_channel()
        slow.command(id=1, connect={})
        await asyncio.to_thread(slow.reply, 1)
        slow.command(id=2, subscribe={"channel": channel})
        assert "subscribe" in await asyncio.to_thread(slow.reply, 2)
        before = len(host.node.hub.clients)
        big = orjson.dumps({"fill": "x" * 100_000})

        def slow_closed() -> bool:
            return any(getattr(record, "code", None) == 3008 for record in caplog.records)

        for _ in range(MAX_FLOOD // len(big)):  # the kernel's buffers take a few MB first
            await host.node.publish(channel, big)
            await asyncio.sleep(0)
            if slow_closed():
                break
        assert slow_closed()
        assert len(host.node.hub.clients) == before - 1
    finally:
        slow.close()
    client, _ = sdk(clients, host.ws_url(), cookie)
    await client.connect()
    await client.ready(timeout=5)
