"""The official Python API client ``cent`` (async and sync) against a real rotary process: every
server API method it offers, batch, and the errors it turns into exceptions. Connected users are
centrifuge-python clients. See https://centrifugal.dev/docs/server/server_api."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import centrifuge
import jwt
import pytest
from cent import (
    AsyncClient,
    BatchRequest,
    BroadcastRequest,
    ChannelOptionsOverride,
    ChannelsRequest,
    Client,
    Disconnect,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    StreamPosition,
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.dto import BoolValue
from cent.exceptions import CentApiResponseError, CentTransportError, CentUnauthorizedError
from helpers.redis_servers import start_standalone
from helpers.server import RotaryProcess, rotary_process

pytestmark = pytest.mark.compat

API_KEY = "cent-tests-api-key"
SECRET = "cent-tests-hmac-secret-key-of-at-least-32-bytes"
CONFIG: dict[str, Any] = {
    "http_api": {"key": API_KEY},
    "client": {"token": {"hmac_secret_key": SECRET}},
    "channel": {
        "namespaces": [
            {"name": "chat", "presence": True, "history_size": 100, "history_ttl": "300s"},
        ],
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryProcess]:
    with rotary_process(tmp_path_factory.mktemp("rotary"), CONFIG) as running:
        yield running
        print(f"--- rotary log ---\n{running.log()}")


@pytest.fixture
async def cent(server: RotaryProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.api_url, API_KEY) as client:
        yield client


@pytest.fixture
def channel() -> str:
    return "chat:" + uuid.uuid4().hex[:12]


class Events:
    """Every ``on_*`` callback of a centrifuge-python client, kept for tests to await."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)

        async def record(ctx: Any) -> None:
            await self.queue.put((name, ctx))

        return record

    def forget(self) -> None:
        """Drops what was seen so far (the events of connecting, before the test acts)."""
        while not self.queue.empty():
            self.queue.get_nowait()

    async def next(self, event: str) -> Any:
        async with asyncio.timeout(5):
            while True:
                name, ctx = await self.queue.get()
                if name == event:
                    return ctx


@dataclass
class Connected:
    """A centrifuge-python client connected as ``name``, with the events it saw."""

    client: centrifuge.Client
    events: Events
    name: str


@pytest.fixture
async def user(server: RotaryProcess) -> AsyncIterator[Connected]:
    events = Events()
    name = "u-" + uuid.uuid4().hex[:8]
    client = centrifuge.Client(
        server.ws_url,
        events=events,
        token=jwt.encode({"sub": name}, SECRET),
        timeout=5.0,
        max_reconnect_delay=0.5,
        proxy=None,
    )
    await client.connect()
    await client.ready(timeout=5)
    events.forget()
    yield Connected(client, events, name)
    await client.disconnect()
    await _sdk_settled()


async def _sdk_settled() -> None:
    """Waits for the SDK's background tasks: it closes replaced sockets without awaiting them, and a
    socket still open when the test's event loop closes is reported as leaked."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        await asyncio.wait(others, timeout=2.0)


# --- publications ----------------------------------------------------------------------------------


async def test_publish_and_history(cent: AsyncClient, channel: str) -> None:
    plain = await cent.publish(PublishRequest(channel="news", data={"n": 0}))
    assert (plain.offset, plain.epoch) == (0, "")
    first = await cent.publish(PublishRequest(channel=channel, data={"n": 1}, tags={"k": "v"}))
    second = await cent.publish(PublishRequest(channel=channel, data={"n": 2}))
    assert (first.offset, second.offset) == (1, 2) and first.epoch == second.epoch != ""

    history = await cent.history(HistoryRequest(channel=channel, limit=10))
    assert [(p.data, p.offset, p.tags) for p in history.publications] == [
        ({"n": 1}, 1, {"k": "v"}),
        ({"n": 2}, 2, None),
    ]
    assert (history.offset, history.epoch) == (2, first.epoch)
    after = await cent.history(
        HistoryRequest(channel=channel, limit=10, since=StreamPosition(offset=1, epoch=first.epoch))
    )
    assert [p.offset for p in after.publications] == [2]
    backwards = await cent.history(HistoryRequest(channel=channel, limit=1, reverse=True))
    assert [p.offset for p in backwards.publications] == [2]

    await cent.history_remove(HistoryRemoveRequest(channel=channel))
    emptied = await cent.history(HistoryRequest(channel=channel, limit=10))
    assert (emptied.publications, emptied.offset) == ([], 2)


async def test_broadcast_answers_each_channel(cent: AsyncClient, channel: str) -> None:
    result = await cent.broadcast(BroadcastRequest(channels=[channel, "nope:x"], data={"b": 1}))
    ok, failed = result.responses
    assert ok.result is not None and ok.result.offset == 1
    assert failed.error is not None and (failed.error.code, failed.error.message) == (102, "unknown channel")


async def test_publish_reaches_a_subscriber(cent: AsyncClient, user: Connected, channel: str) -> None:
    events = user.events
    await cent.subscribe(SubscribeRequest(user=user.name, channel=channel))
    await events.next("on_subscribed")
    await cent.publish(PublishRequest(channel=channel, data={"hello": "sdk"}))
    ctx = await events.next("on_publication")
    assert (ctx.channel, ctx.pub.data) == (channel, {"hello": "sdk"})


# --- connections -----------------------------------------------------------------------------------


async def test_server_side_subscription_presence_and_stats(
    cent: AsyncClient, user: Connected, channel: str
) -> None:
    events, name = user.events, user.name
    override = ChannelOptionsOverride(presence=BoolValue(value=True))
    await cent.subscribe(
        SubscribeRequest(
            user=name, channel=channel, data={"welcome": 1}, info={"role": "x"}, override=override
        )
    )
    subscribed = await events.next("on_subscribed")
    assert (subscribed.channel, subscribed.data) == (channel, {"welcome": 1})

    presence = await cent.presence(PresenceRequest(channel=channel))
    (info,) = presence.presence.values()
    assert (info.user, info.chan_info) == (name, {"role": "x"})
    stats = await cent.presence_stats(PresenceStatsRequest(channel=channel))
    assert (stats.num_clients, stats.num_users) == (1, 1)

    channels = await cent.channels(ChannelsRequest(pattern="chat:*"))
    assert channels.channels[channel].num_clients == 1
    (node,) = (await cent.info(InfoRequest())).nodes
    assert node.num_clients >= 1 and node.uid and node.name

    await cent.unsubscribe(UnsubscribeRequest(user=name, channel=channel))
    unsubscribed = await events.next("on_unsubscribed")
    assert unsubscribed.channel == channel


async def test_disconnect_with_a_custom_code(cent: AsyncClient, user: Connected) -> None:
    events = user.events
    await cent.disconnect(DisconnectRequest(user=user.name, disconnect=Disconnect(code=4500, reason="bye")))
    ctx = await events.next("on_disconnected")
    assert (ctx.code, ctx.reason) == (4500, "bye")


async def test_refresh_expired_makes_the_client_reconnect(cent: AsyncClient, user: Connected) -> None:
    events = user.events
    await cent.refresh(RefreshRequest(user=user.name, expired=True))
    ctx = await events.next("on_connecting")
    assert ctx.code == 3005
    await events.next("on_connected")


# --- batch -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [False, True])
async def test_batch(cent: AsyncClient, channel: str, parallel: bool) -> None:
    result = await cent.batch(
        BatchRequest(
            requests=[
                PublishRequest(channel=channel, data={"n": 1}),
                PresenceStatsRequest(channel=channel),
                InfoRequest(),
            ],
            parallel=parallel,
        )
    )
    published, stats, info = result.replies
    assert published.offset == 1  # type: ignore[attr-defined]
    assert (stats.num_clients, stats.num_users) == (0, 0)  # type: ignore[attr-defined]
    assert len(info.nodes) == 1  # type: ignore[attr-defined]


# --- errors ----------------------------------------------------------------------------------------


async def test_wrong_key_is_unauthorized(server: RotaryProcess) -> None:
    async with AsyncClient(server.api_url, "wrong") as client:
        with pytest.raises(CentUnauthorizedError):
            await client.info(InfoRequest())


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.publish(PublishRequest(channel="nope:x", data={})), 102),
        (lambda c: c.publish(PublishRequest(channel="news", data=None)), 107),
        (lambda c: c.publish(PublishRequest(channel="news", data=None, b64data="###")), 107),
        (lambda c: c.presence(PresenceRequest(channel="news")), 108),
        (lambda c: c.history(HistoryRequest(channel="news")), 108),
        (
            lambda c: c.history(
                HistoryRequest(channel="chat:x", limit=1, since=StreamPosition(offset=5, epoch="old"))
            ),
            112,
        ),
        (lambda c: c.disconnect(DisconnectRequest(user="x", disconnect=Disconnect(code=1, reason=""))), 107),
    ],
    ids=[
        "unknown-namespace",
        "missing-data",
        "bad-base64",
        "presence-off",
        "history-off",
        "lost-epoch",
        "bad-disconnect-code",
    ],
)
async def test_api_errors(cent: AsyncClient, call: Any, code: int) -> None:
    with pytest.raises(CentApiResponseError) as caught:
        await call(cent)
    assert caught.value.code == code


async def test_transport_error_mode(server: RotaryProcess) -> None:
    session = aiohttp.ClientSession(headers={"X-Centrifugo-Error-Mode": "transport"})
    async with AsyncClient(server.api_url, API_KEY, session=session) as client:
        with pytest.raises(CentTransportError) as caught:
            await client.publish(PublishRequest(channel="nope:x", data={}))
    assert caught.value.status_code == 404


# --- the sync client -------------------------------------------------------------------------------


def test_sync_client(server: RotaryProcess, tmp_path: Path) -> None:
    with Client(server.api_url, API_KEY) as client:
        result = client.publish(PublishRequest(channel="chat:sync-" + tmp_path.name, data=[1, 2]))
        assert result.offset == 1
        assert len(client.info(InfoRequest()).nodes) == 1
        with pytest.raises(CentApiResponseError) as caught:
            client.publish(PublishRequest(channel="nope:x", data={}))
        assert caught.value.code == 102
    with Client(server.api_url, "wrong") as client, pytest.raises(CentUnauthorizedError):
        client.info(InfoRequest())


# --- two nodes on one Redis ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RotaryProcess, RotaryProcess]]:
    """Two rotary processes sharing a Redis engine; the API of either acts on both."""
    redis = start_standalone()
    config = {
        **CONFIG,
        "engine": {
            "type": "redis",
            "redis": {"address": [f"redis://{redis.addresses[0]}"], "prefix": "cent-" + uuid.uuid4().hex[:8]},
        },
    }
    try:
        with (
            rotary_process(tmp_path_factory.mktemp("node-a"), config) as a,
            rotary_process(tmp_path_factory.mktemp("node-b"), config) as b,
        ):
            yield a, b
    finally:
        redis.stop()


async def test_api_of_one_node_acts_on_the_cluster(
    two_nodes: tuple[RotaryProcess, RotaryProcess], channel: str
) -> None:
    a, b = two_nodes
    events = Events()
    name = "u-" + uuid.uuid4().hex[:8]
    client = centrifuge.Client(
        b.ws_url,
        events=events,
        token=jwt.encode({"sub": name}, SECRET),
        timeout=5.0,
        max_reconnect_delay=0.5,
        proxy=None,
    )
    await client.connect()
    try:
        await client.ready(timeout=5)
        async with AsyncClient(a.api_url, API_KEY) as cent:
            async with asyncio.timeout(10):
                while len((await cent.info(InfoRequest())).nodes) < 2:
                    await asyncio.sleep(0.2)
            await cent.subscribe(SubscribeRequest(user=name, channel=channel))
            await events.next("on_subscribed")
            assert (await cent.channels(ChannelsRequest(pattern=channel))).channels[channel].num_clients == 1
            await cent.publish(PublishRequest(channel=channel, data={"via": "a"}))
            assert (await events.next("on_publication")).pub.data == {"via": "a"}
            await cent.disconnect(DisconnectRequest(user=name))
            assert (await events.next("on_disconnected")).code == 3503
    finally:
        await client.disconnect()
        await _sdk_settled()
