"""centrifuge-python with `websocket.compression` on: the `websockets` library it runs on offers
permessage-deflate, rotary accepts it as Centrifugo does, and large publications (compressed) and
small ones (under `compression_min_size`, sent plain) arrive intact over JSON and Protobuf; large
client publications, compressed by the SDK, are inflated by the server. See
https://centrifugal.dev/docs/transports/websocket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.compat

COMPRESSION = {"websocket": {"compression": True, "compression_min_size": 256}}
ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
async def test_sdk_negotiates_compression_and_gets_large_publications(
    start_rotary: Callable[[dict[str, Any]], Any],
    sdk_clients: Callable[..., Any],
    make_token: Callable[..., str],
    channel: str,
    use_protobuf: bool,
) -> None:
    server = start_rotary(COMPRESSION)
    sdk = sdk_clients(server, use_protobuf=use_protobuf, token=make_token({"sub": "42"}))
    await sdk.client.connect()
    await sdk.client.ready(timeout=5)
    connection = sdk.client._conn  # the SDK's `websockets` connection, to see what was negotiated
    assert connection.response.headers["Sec-WebSocket-Extensions"] == ANSWER
    assert [extension.name for extension in connection.protocol.extensions] == ["permessage-deflate"]
    sub, events = sdk.subscription(channel)
    await sub.subscribe()
    await sub.ready(timeout=5)
    sent = [{"text": f"publication {n} " + "lorem ipsum dolor sit amet " * 2000} for n in range(5)]
    sent.append({"small": True})
    for data in sent:
        await server.api("publish", {"channel": channel, "data": data})
    for data in sent:
        ctx = await events.next("on_publication")
        assert (orjson.loads(ctx.pub.data) if use_protobuf else ctx.pub.data) == data
    large = {"from": "client", "text": "x" * 50000}
    await sub.publish(orjson.dumps(large) if use_protobuf else large)
    ctx = await events.next("on_publication")
    received = orjson.loads(ctx.pub.data) if use_protobuf else ctx.pub.data
    assert received == large
