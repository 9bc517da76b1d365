"""The subscribe stream proxy (GRPC only): centrifuge-python subscribes, the backend's stream feeds
that subscriber, and, bidirectionally, the subscriber's publications go into the stream. On two
nodes sharing Redis such a subscription is a channel subscription like any other: the server API on
the other node publishes to it, sees its presence, and ends it (which closes the backend's stream).

See https://centrifugal.dev/docs/server/proxy_streams
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import redis_servers
from helpers.cluster import CHAT_NAMESPACE, connected, redis_config, rotary_nodes
from helpers.proxy_backend import ProxyBackend

pytestmark = pytest.mark.compat

Start = Callable[[dict[str, Any]], Any]


def config(backend: ProxyBackend) -> dict[str, Any]:
    return {
        "client": {"allow_anonymous_connect_without_token": True},
        "channel": {
            "proxy": {"subscribe_stream": {"endpoint": backend.grpc_endpoint, "timeout": "3s"}},
            "namespaces": [
                {"name": "st", "subscribe_stream_proxy_enabled": True},
                {
                    "name": "bd",
                    "subscribe_stream_proxy_enabled": True,
                    "subscribe_stream_proxy_bidirectional": True,
                },
            ],
        },
    }


async def first_stream(backend: ProxyBackend) -> Any:
    async with asyncio.timeout(10):
        while not backend.streams:
            await asyncio.sleep(0.01)
    return backend.streams[0]


async def test_unidirectional_stream_feeds_its_subscriber_until_it_ends(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any
) -> None:
    backend.answers["subscribe_stream"] = lambda req: {"result": {"data": {"stream": req["channel"]}}}
    sdk = sdk_clients(start_rotary(config(backend)))
    await sdk.client.connect()
    sub, events = sdk.subscription("st:feed")
    await sub.subscribe()
    assert (await events.next("on_subscribed")).data == {"stream": "st:feed"}
    stream = await first_stream(backend)
    await stream.outgoing.put({"n": 1})
    publication = await events.next("on_publication")
    assert publication.pub.data == {"n": 1} and not publication.pub.offset
    with pytest.raises(Exception) as refused:
        await sub.publish({"x": 1})
    assert getattr(refused.value, "code", None) == 108
    await stream.outgoing.put(None)  # the backend ends the stream
    unsubscribed = await events.next("on_unsubscribed")
    assert unsubscribed.code == 2000


async def test_bidirectional_stream_takes_the_subscribers_publications(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any
) -> None:
    backend.answers["subscribe_stream"] = lambda req: {"result": {}}
    sdk = sdk_clients(start_rotary(config(backend)))
    await sdk.client.connect()
    sub, events = sdk.subscription("bd:chat")
    await sub.subscribe()
    await events.next("on_subscribed")
    await sub.publish({"text": "into the stream"})
    echo = await events.next("on_publication")
    assert echo.pub.data == {"echo": {"text": "into the stream"}}
    stream = await first_stream(backend)
    assert stream.received == [{"text": "into the stream"}]
    await sub.unsubscribe()
    async with asyncio.timeout(10):
        await stream.ended.wait()  # unsubscribing closes the backend's stream


async def test_stream_refusal_reaches_the_client(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any
) -> None:
    backend.answers["subscribe_stream"] = lambda req: {"error": {"code": 4403, "message": "not yours"}}
    sdk = sdk_clients(start_rotary(config(backend)))
    await sdk.client.connect()
    sub, events = sdk.subscription("st:closed")
    await sub.subscribe()
    unsubscribed = await events.next("on_unsubscribed")
    assert (unsubscribed.code, unsubscribed.reason) == (4403, "not yours")
    stream = await first_stream(backend)
    async with asyncio.timeout(10):
        await stream.ended.wait()  # a refused subscribe leaves no stream open


async def nth_stream(backend: ProxyBackend, index: int) -> Any:
    async with asyncio.timeout(10):
        while len(backend.streams) <= index:
            await asyncio.sleep(0.01)
    return backend.streams[index]


async def test_stream_subscriber_on_one_node_served_by_the_api_of_another(
    backend: ProxyBackend, sdk_clients: Any, tmp_path: Path
) -> None:
    backend.answers["subscribe_stream"] = lambda req: {"result": {}}
    redis = redis_servers.start_standalone()
    try:
        settings = redis_config(redis.addresses[0], redis_servers.unique_prefix())
        stream_namespace = {"name": "st", "subscribe_stream_proxy_enabled": True, "presence": True}
        settings["channel"] = {
            "proxy": {"subscribe_stream": {"endpoint": backend.grpc_endpoint, "timeout": "3s"}},
            "namespaces": [copy.deepcopy(CHAT_NAMESPACE), stream_namespace],
        }
        with rotary_nodes(tmp_path, settings, 2) as (api_node, client_node):
            sdk = await connected(sdk_clients, client_node, "streamer")
            sub, events = sdk.subscription("st:feed")
            await sub.subscribe()
            await events.next("on_subscribed")
            stream = await nth_stream(backend, 0)
            assert stream.request.user == "streamer"

            await stream.outgoing.put({"from": "backend"})
            assert (await events.next("on_publication")).pub.data == {"from": "backend"}
            await api_node.api("publish", {"channel": "st:feed", "data": {"from": "api"}})
            assert (await events.next("on_publication")).pub.data == {"from": "api"}
            presence = await api_node.api("presence", {"channel": "st:feed"})
            assert [c["user"] for c in presence["presence"].values()] == ["streamer"]

            await api_node.api("unsubscribe", {"user": "streamer", "channel": "st:feed"})
            assert (await events.next("on_unsubscribed")).code == 2000
            async with asyncio.timeout(10):
                await stream.ended.wait()  # the backend sees its stream closed

            await sub.subscribe()
            await events.next("on_subscribed")
            again = await nth_stream(backend, 1)
            await api_node.api("disconnect", {"user": "streamer"})
            await sdk.events.next("on_disconnected")
            async with asyncio.timeout(10):
                await again.ended.wait()
    finally:
        redis.stop()
