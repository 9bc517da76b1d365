"""Server-side refresh through the refresh and sub_refresh proxies, on one node and on two nodes
sharing Redis, and the connect proxy on the unidirectional transports.

With a refresh proxy the client is not told its TTL: at expiry rotary asks the backend, which
extends the connection or ends it (3005); a sub_refresh proxy does the same for subscriptions
(unsubscribe 2501). See https://centrifugal.dev/docs/server/proxy#refresh-proxy and
https://centrifugal.dev/docs/server/proxy#sub-refresh-proxy
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from grpc import aio
from helpers import redis_servers
from helpers.cluster import redis_config, rotary_nodes
from helpers.env import free_port
from helpers.proxy_backend import ProxyBackend

from rotary.protocol._pb import unistream_pb2

pytestmark = pytest.mark.compat

Start = Callable[[dict[str, Any]], Any]


def refresh_config(backend: ProxyBackend, over: str) -> dict[str, Any]:
    def proxy(kind: str) -> dict[str, Any]:
        return {"enabled": True, "endpoint": backend.endpoint(over, kind), "timeout": "3s"}

    return {
        "client": {
            "proxy": {
                "connect": proxy("connect"),
                "refresh": {**proxy("refresh"), "include_connection_meta": True},
            },
            "expired_sub_close_delay": "1s",
            "presence_update_interval": "1s",  # subscription expiry is checked on this tick
        },
        "channel": {
            "proxy": {
                "subscribe": {"endpoint": backend.endpoint(over, "subscribe"), "timeout": "3s"},
                "sub_refresh": {"endpoint": backend.endpoint(over, "sub_refresh"), "timeout": "3s"},
            },
            "namespaces": [
                {"name": "px", "subscribe_proxy_enabled": True, "sub_refresh_proxy_enabled": True}
            ],
        },
    }


async def disconnect_code(sdk: Any) -> int:
    """The code of the first disconnect after connecting (3005 is one the SDK reconnects after)."""
    while True:
        ctx = await sdk.events.next("on_connecting", timeout=15)
        if ctx.code != 0:
            await sdk.client.disconnect()
            return int(ctx.code)


def soon() -> int:
    return int(time.time()) + 1


def script_refresh(backend: ProxyBackend, extensions: int) -> None:
    """Connections live a second at a time, ``extensions`` times, then the backend says expired."""
    backend.answers["connect"] = lambda req: {
        "result": {"user": "carol", "expire_at": soon(), "meta": {"m": 1}}
    }

    def refresh(req: dict[str, Any]) -> dict[str, Any]:
        done = len(backend.requests("refresh"))
        return {"result": {"expired": True}} if done > extensions else {"result": {"expire_at": soon()}}

    backend.answers["refresh"] = refresh


async def test_connection_refreshed_by_the_server_until_the_backend_says_expired(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any, over: str
) -> None:
    script_refresh(backend, extensions=2)
    server = start_rotary(refresh_config(backend, over))
    sdk = sdk_clients(server)
    await sdk.client.connect()
    await sdk.events.next("on_connected")
    assert await disconnect_code(sdk) == 3005
    refreshes = backend.requests("refresh")
    assert len(refreshes) >= 3  # two extensions, then expired
    assert refreshes[0].body["user"] == "carol" and refreshes[0].body["meta"] == {"m": 1}


async def test_subscription_refreshed_by_the_server_until_the_backend_says_expired(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any, over: str
) -> None:
    backend.answers["connect"] = lambda req: {"result": {"user": "dave"}}
    backend.answers["subscribe"] = lambda req: {"result": {"expire_at": soon()}}
    backend.answers["sub_refresh"] = lambda req: (
        {"result": {"expired": True}}
        if len(backend.requests("sub_refresh")) > 1
        else {"result": {"expire_at": soon()}}
    )
    server = start_rotary(refresh_config(backend, over))
    sdk = sdk_clients(server)
    await sdk.client.connect()
    sub, events = sdk.subscription("px:timed")
    await sub.subscribe()
    await events.next("on_subscribed")
    while (ctx := await events.next("on_subscribing", timeout=15)).code == 0:
        pass
    assert ctx.code == 2501  # the SDK subscribes again after "subscription expired"
    await sub.unsubscribe()
    refreshes = backend.requests("sub_refresh")
    assert len(refreshes) >= 2 and refreshes[0].body["channel"] == "px:timed"


async def test_refresh_proxy_serves_users_on_either_node(
    backend: ProxyBackend, sdk_clients: Any, tmp_path: Path
) -> None:
    script_refresh(backend, extensions=1)
    redis = redis_servers.start_standalone()
    try:
        config = {
            **redis_config(redis.addresses[0], redis_servers.unique_prefix()),
            **refresh_config(backend, "http"),
        }
        with rotary_nodes(tmp_path, config, 2) as nodes:
            clients = [sdk_clients(node) for node in nodes]
            for sdk in clients:
                await sdk.client.connect()
                await sdk.events.next("on_connected")
            for sdk in clients:
                assert await disconnect_code(sdk) == 3005
            clients_refreshed = {seen.body["client"] for seen in backend.requests("refresh")}
            assert len(clients_refreshed) >= 2
    finally:
        redis.stop()


@pytest.mark.parametrize("transport", ["uni_sse", "uni_http_stream"])
async def test_unidirectional_connect_through_the_proxy_with_cookie(
    backend: ProxyBackend, start_rotary: Start, transport: str
) -> None:
    backend.answers["connect"] = lambda req: {
        "result": {"user": "erin", "data": {"via": req["transport"]}, "channels": ["open:uni"]}
    }
    connect = {
        "enabled": True,
        "endpoint": backend.http_endpoint("connect"),
        "timeout": "3s",
        "http_headers": ["cookie"],
    }
    server = start_rotary(
        {
            "client": {"proxy": {"connect": connect}},
            "channel": {"namespaces": [{"name": "open"}]},
            "uni_sse": {"enabled": True},
            "uni_http_stream": {"enabled": True},
        }
    )
    url = f"{server.http_url}/connection/{transport}"
    async with aiohttp.ClientSession(headers={"Cookie": "sid=uni"}) as session:
        if transport == "uni_sse":
            response = await session.get(url, params={"cf_connect": json.dumps({"data": {"x": 1}})})
        else:
            response = await session.post(url, data=json.dumps({"data": {"x": 1}}))
        async with response:
            assert response.status == 200
            line = b""
            while b"connect" not in line:
                line = await response.content.readline()
    push = orjson.loads(line.removeprefix(b"data: "))
    assert push["connect"]["data"] == {"via": transport}
    assert "open:uni" in push["connect"]["subs"]
    seen = backend.requests("connect")[0]
    assert seen.headers["cookie"] == "sid=uni" and seen.body["data"] == {"x": 1}


async def test_uni_grpc_connect_forwards_grpc_metadata(backend: ProxyBackend, start_rotary: Start) -> None:
    """A uni_grpc connection has no HTTP headers: its call metadata listed in grpc_metadata travels."""
    backend.answers["connect"] = lambda req: {
        "result": {"user": "grpc-erin", "data": {"via": req["transport"]}}
    }
    port = free_port()
    connect = {
        "enabled": True,
        "endpoint": backend.grpc_endpoint,
        "timeout": "3s",
        "grpc_metadata": ["authorization"],
        "http_headers": ["authorization"],
    }
    start_rotary(
        {
            "client": {"proxy": {"connect": connect}},
            "uni_grpc": {"enabled": True, "address": "127.0.0.1", "port": port},
        }
    )
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_stream(
            "/centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume",
            request_serializer=unistream_pb2.ConnectRequest.SerializeToString,
            response_deserializer=unistream_pb2.Push.FromString,
        )
        stream = call(
            unistream_pb2.ConnectRequest(), metadata=(("authorization", "Bearer meta"), ("x-other", "no"))
        )
        push = await asyncio.wait_for(stream.read(), 10)
        stream.cancel()
    assert orjson.loads(push.connect.data) == {"via": "uni_grpc"}
    seen = backend.requests("connect")[0]
    assert seen.headers["authorization"] == "Bearer meta" and "x-other" not in seen.headers
