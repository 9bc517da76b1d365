"""Config reload in process (server/reload.py, app.reconfigure): what SIGHUP does, without the signal.

The new config reaches new subscriptions, new connections and the server API at once; a refused
config leaves every object of the running server as it was. The real signal, process and SDK are
in tests/compat/test_reload_signal.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from functools import partial

import aiohttp
import jwt
import orjson
import pytest
from helpers.server import InProcessServer, WsClient, start_in_process

from rotary.server.app import reconfigure
from rotary.server.config import ConfigError
from rotary.server.config.schema import ChannelConfig, ClientConfig, Config, NamespaceConfig, TokenConfig
from rotary.server.config.schema_transports import HttpAPIConfig
from rotary.server.reload import REFUSED, RELOADED, reload_config

SECRET = "reload-tests-hmac-secret-key-of-32-bytes-at-least"
ROTATED = "reload-tests-rotated-hmac-secret-key-of-32-bytes"
UNKNOWN_CHANNEL = 102
INVALID_TOKEN = 3500
log = logging.getLogger("tests.reload")


def config(secret: str = SECRET, *namespaces: str) -> Config:
    spaces = tuple(NamespaceConfig(name=name, allow_subscribe_for_client=True) for name in namespaces)
    return Config(
        client=ClientConfig(token=TokenConfig(hmac_secret_key=secret)),
        channel=ChannelConfig(namespaces=spaces),
        http_api=HttpAPIConfig(key="reload-api-key"),
    )


@pytest.fixture
async def server() -> AsyncIterator[InProcessServer]:
    started = await start_in_process(config(SECRET, "chat"))
    yield started
    await started.close()


async def connect(server: InProcessServer, secret: str, user: str) -> WsClient:
    ws = await server.http.ws_connect(server.config.websocket.handler_prefix, protocols=("centrifuge-json",))
    client = WsClient(ws)
    server.sockets.append(client)
    await client.command(connect={"token": jwt.encode({"sub": user}, secret, algorithm="HS256")})
    return client


async def reload(server: InProcessServer, new: Config) -> bool:
    return await reload_config(lambda: new, partial(reconfigure, server.server), log)


async def test_new_namespace_reaches_clients_and_api(server: InProcessServer) -> None:
    client = await server.connect("alice", "chat:a")
    assert (await client.command(subscribe={"channel": "news:a"}))["error"]["code"] == UNKNOWN_CHANNEL
    assert (await server.call("publish", {"channel": "news:a", "data": {}}))[1]["error"]["code"] == 102

    assert await reload(server, config(SECRET, "chat", "news"))

    assert "error" not in await client.command(subscribe={"channel": "news:a"})
    status, body = await server.call("publish", {"channel": "news:a", "data": {"n": 1}})
    assert (status, "error" in body) == (200, False)
    assert (await client.push("pub"))["channel"] == "news:a"


async def test_refused_config_changes_nothing(
    server: InProcessServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = (server.node.hooks, server.server.verifier)

    def broken() -> Config:
        raise ConfigError(["channel.namespaces[0].name: invalid namespace name"])

    assert not await reload_config(broken, partial(reconfigure, server.server), log)
    assert (server.node.hooks, server.server.verifier) == before
    assert f"{REFUSED}: channel.namespaces[0].name: invalid namespace name" in caplog.text
    assert RELOADED not in caplog.text
    client = await server.connect("bob")
    assert (await client.command(subscribe={"channel": "news:a"}))["error"]["code"] == UNKNOWN_CHANNEL


async def test_rotated_token_key(server: InProcessServer) -> None:
    connected = await server.connect("carol", "chat:a")
    assert await reload(server, config(ROTATED, "chat"))

    fresh = await connect(server, ROTATED, "dave")
    assert "error" not in await fresh.command(subscribe={"channel": "chat:a"})
    stale = await server.http.ws_connect(
        server.config.websocket.handler_prefix, protocols=("centrifuge-json",)
    )
    late = WsClient(stale)
    server.sockets.append(late)
    old_key_token = jwt.encode({"sub": "x"}, SECRET, algorithm="HS256")
    await late.ws.send_str(orjson.dumps({"id": 1, "connect": {"token": old_key_token}}).decode())
    assert await late.close_code() == INVALID_TOKEN
    await server.call("publish", {"channel": "chat:a", "data": {"still": "here"}})
    assert (await connected.push("pub"))["pub"]["data"] == {"still": "here"}


async def test_connection_limit_is_reloaded(server: InProcessServer) -> None:
    """Centrifugo reads client.connection_limit per request: a reload lowers it for the next one."""
    await server.connect("erin")
    limited = config(SECRET, "chat")
    limited = dataclasses.replace(limited, client=dataclasses.replace(limited.client, connection_limit=1))
    assert await reload(server, limited)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await server.http.ws_connect(server.config.websocket.handler_prefix)
    assert refused.value.status == 503
