"""Delta compression with the official SDKs: centrifuge-python and npm ``centrifuge`` subscribe with
``delta: "fossil"`` over JSON and Protobuf, receive real fossil deltas, and reconstruct exactly the
data a plain subscriber gets, live and after recovery. See
https://centrifugal.dev/docs/server/delta_compression.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from centrifuge import DeltaType

pytestmark = pytest.mark.compat

DELTA_CONFIG: dict[str, Any] = {
    "http_api": {"disabled": False},
    "channel": {
        "namespaces": [
            {
                "name": "delta",
                "allowed_delta_types": ["fossil"],
                "force_positioning": True,
                "force_recovery": True,
                "history_size": 100,
                "history_ttl": "300s",
                "allow_subscribe_for_client": True,
                "allow_publish_for_subscriber": True,
            }
        ]
    },
}
"""Overrides of the shared compat configuration: one namespace where fossil deltas are allowed."""
SCRIPTS = Path(__file__).with_name("js")


@pytest.fixture
def server(start_rotary: Callable[[dict[str, Any]], Any]) -> Any:
    return start_rotary(DELTA_CONFIG)


def document(version: int) -> dict[str, Any]:
    return {"rows": [{"id": i, "name": f"row {i}", "v": version if i == 7 else i} for i in range(40)]}


async def publish(server: Any, channel: str, versions: range) -> None:
    for version in versions:
        await server.api("publish", {"channel": channel, "data": document(version), "delta": True})


async def received(events: Any, count: int) -> list[Any]:
    return [await events.next("on_publication") for _ in range(count)]


def data(ctx: Any) -> Any:
    value = ctx.pub.data
    return orjson.loads(value) if isinstance(value, bytes) else value


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
async def test_python_sdk_applies_deltas_live_and_after_recovery(
    server: Any, sdk_clients: Callable[..., Any], make_token: Callable[..., str], use_protobuf: bool
) -> None:
    channel = f"delta:py-{'pb' if use_protobuf else 'json'}"
    plain = sdk_clients(server, use_protobuf=use_protobuf, token=make_token({"sub": "plain"}))
    delta = sdk_clients(server, use_protobuf=use_protobuf, token=make_token({"sub": "delta"}))
    for sdk in (plain, delta):
        await sdk.client.connect()
        await sdk.client.ready(timeout=5)
    plain_sub, plain_events = plain.subscription(channel)
    delta_sub, delta_events = delta.subscription(channel, delta=DeltaType.FOSSIL)
    for sub in (plain_sub, delta_sub):
        await sub.subscribe()
        await sub.ready(timeout=5)

    await publish(server, channel, range(4))
    live = await received(delta_events, 4)
    assert [ctx.pub.delta for ctx in live] == [False, True, True, True]

    await delta.client.disconnect()
    await publish(server, channel, range(4, 7))
    await delta.client.connect()
    recovered = await received(delta_events, 3)
    subscribed = [ctx for name, ctx in delta_events.seen if name == "on_subscribed"][-1]
    assert subscribed.recovered
    await publish(server, channel, range(7, 9))
    after = await received(delta_events, 2)

    expected = [document(version) for version in range(9)]
    assert [data(ctx) for ctx in await received(plain_events, 9)] == expected
    assert [data(ctx) for ctx in live + recovered + after] == expected
    assert [ctx.pub.offset for ctx in live + recovered + after] == list(range(1, 10))
    assert any(ctx.pub.delta for ctx in recovered) and all(ctx.pub.delta for ctx in after)


@pytest.mark.parametrize("protocol", ["json", "protobuf"])
def test_js_sdk_applies_deltas_live_and_after_recovery(server: Any, node: str, protocol: str) -> None:
    environment = {
        **os.environ,
        "ROTARY_WS_URL": server.ws_url,
        "ROTARY_HTTP_URL": server.http_url,
        "ROTARY_SECRET": server.secret,
        "ROTARY_API_KEY": server.api_key,
        "ROTARY_PROTOCOL": protocol,
        "ROTARY_CHANNEL": f"delta:js-{protocol}",
    }
    done = subprocess.run(
        [node, str(SCRIPTS / "delta_fossil.mjs")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"delta_fossil.mjs failed:\n{done.stderr}\n{done.stdout}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [{"offset": version + 1, "data": document(version)} for version in range(9)]
    assert seen["plain"] == expected
    assert seen["delta"] == expected
    stats = seen["stats"]
    assert stats["numPublications"] == 9
    assert stats["numDeltaPayloads"] >= 6  # the first ones after (re)subscribing may be whole
    assert stats["bytesReceived"] < stats["bytesDecoded"] / 3
