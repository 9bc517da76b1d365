"""Connection-level rules that need the node and the server hooks together."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import jwt
from helpers.recording import RecordingTransport, json_messages, send

from rotary.node.client import Client
from rotary.protocol import codes, pb
from rotary.server.app import build_server
from rotary.server.config.load import load_config

SECRET = "x" * 32


def server_for(tmp_path: Path, config: dict[str, object]):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return build_server(load_config(str(path), {}, {}).config)


def token(user: str, **claims: object) -> str:
    return jwt.encode({"sub": user, **claims}, SECRET, algorithm="HS256")


async def test_single_connection_closes_the_users_older_connection(tmp_path: Path) -> None:
    server = server_for(
        tmp_path,
        {
            "client": {
                "token": {"hmac_secret_key": SECRET},
                "subscribe_to_user_personal_channel": {"enabled": True, "single_connection": True},
            },
            "channel": {"without_namespace": {"presence": True}},
        },
    )
    node = server.node
    await node.start()
    first, second = RecordingTransport(), RecordingTransport()
    await send(Client(node, first), pb.Command(id=1, connect=pb.ConnectRequest(token=token("42"))))
    await send(Client(node, second), pb.Command(id=1, connect=pb.ConnectRequest(token=token("42"))))
    assert first.closed_with == codes.DISCONNECT_CONNECTION_LIMIT
    assert second.closed_with is None
    assert "#42" in json_messages(second)[0]["connect"]["subs"]  # type: ignore[index]
    await node.shutdown()


async def test_expired_subscription_token_unsubscribes_with_2501(tmp_path: Path) -> None:
    server = server_for(
        tmp_path,
        {
            "client": {
                "token": {"hmac_secret_key": SECRET},
                "expired_sub_close_delay": "100ms",
                "presence_update_interval": "100ms",  # the tick that checks subscription expiry
            },
            "channel": {"without_namespace": {}},
        },
    )
    node = server.node
    await node.start()
    t = RecordingTransport()
    client = Client(node, t)
    await send(client, pb.Command(id=1, connect=pb.ConnectRequest(token=token("42"))))
    sub_token = token("42", channel="$secret", exp=int(time.time()) + 1)
    await send(client, pb.Command(id=2, subscribe=pb.SubscribeRequest(channel="$secret", token=sub_token)))
    reply = json_messages(t)[1]
    assert reply["subscribe"]["expires"] is True  # type: ignore[index]
    # Ended on the first presence tick once the Unix second is past exp: up to 2 s from now on a
    # quiet machine. The wait is an upper bound, not a margin, so a loaded machine cannot break it.
    async with asyncio.timeout(60):
        while client.is_subscribed("$secret"):
            await asyncio.sleep(0.05)
    unsubscribe = json_messages(t)[-1]
    assert unsubscribe == {
        "push": {"channel": "$secret", "unsubscribe": {"code": 2501, "reason": "subscription expired"}}
    }
    assert not client.is_subscribed("$secret")
    await node.shutdown()
