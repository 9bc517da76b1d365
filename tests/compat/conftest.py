"""A real rotary process for the official SDKs to talk to.

Each server is the ``rotary`` console script on a free port (``helpers.server.rotary_process``),
logging at debug level to a file that tests print on failure (pytest shows captured output of
failed tests only). The shared default configuration
follows what Centrifugo's SDK docs use: an HMAC token key, an API key, and a ``chat`` namespace with
presence, join/leave, history and client publishing
(https://centrifugal.dev/docs/transports/client_api).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import centrifuge
import jwt
import pytest
from helpers.env import IN_CI, require_binary
from helpers.proxy_backend import ProxyBackend, running_backend
from helpers.server import RotaryProcess, rotary_process

SECRET = "compat-tests-hmac-secret-key-of-at-least-32-bytes"
API_KEY = "compat-tests-api-key"

DEFAULT_CONFIG: dict[str, Any] = {
    "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"]},
    "http_api": {"key": API_KEY},
    "channel": {
        "namespaces": [
            {
                "name": "chat",
                "presence": True,
                "join_leave": True,
                "history_size": 100,
                "history_ttl": "300s",
                "force_recovery": True,
                "allow_subscribe_for_client": True,
                "allow_publish_for_subscriber": True,
                "allow_presence_for_subscriber": True,
                "allow_history_for_subscriber": True,
            }
        ]
    },
}


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied section by section (nested dicts merge, values replace)."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def sign_token(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    """A connection or subscription JWT signed like an application backend would sign it."""
    return jwt.encode(claims, secret, algorithm=algorithm)


@pytest.fixture
def make_token() -> Callable[..., str]:
    """``make_token(claims, secret=<the servers' key>, algorithm="HS256")``."""
    return sign_token


@dataclass
class RotaryServer:
    """One running rotary process, with what a test needs to act as its clients and its backend."""

    process: RotaryProcess
    secret: str = SECRET
    api_key: str = API_KEY

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def ws_url(self) -> str:
        return self.process.ws_url

    @property
    def http_url(self) -> str:
        return self.process.http_url

    def log(self) -> str:
        return self.process.log()

    async def api(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Calls the server HTTP API (``POST /api/<method>`` with ``X-API-Key``)."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.http_url}/api/{method}", json=payload, headers={"X-API-Key": self.api_key}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
        assert "error" not in body, body
        return body


@contextlib.contextmanager
def running_rotary(directory: Path, config: dict[str, Any]) -> Iterator[RotaryServer]:
    """Starts rotary with ``config`` in ``directory``, logging at debug level; stops it on exit."""
    with rotary_process(directory, config, "--log.level", "debug") as process:
        yield RotaryServer(process)


@pytest.fixture(scope="module")
def rotary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryServer]:
    """A server with the default configuration, shared by the tests of one module."""
    with running_rotary(tmp_path_factory.mktemp("rotary"), DEFAULT_CONFIG) as server:
        yield server


@pytest.fixture
def start_rotary(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], RotaryServer]]:
    """Starts servers whose configuration differs from the default; all stop after the test."""
    started: list[RotaryServer] = []
    with contextlib.ExitStack() as stack:

        def start(overrides: dict[str, Any]) -> RotaryServer:
            directory = tmp_path / f"rotary{len(started)}"
            server = stack.enter_context(running_rotary(directory, merged(DEFAULT_CONFIG, overrides)))
            started.append(server)
            return server

        yield start
    for server in started:
        print(f"--- rotary log (port {server.port}) ---\n{server.log()}")


@pytest.fixture(autouse=True)
def _server_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints what the servers of this test logged while it ran; pytest shows it only on failure."""
    servers = [request.getfixturevalue("rotary")] if "rotary" in request.fixturenames else []
    offsets = [len(s.log()) for s in servers]
    yield
    for server, offset in zip(servers, offsets, strict=True):
        print(f"--- rotary log (port {server.port}) ---\n{server.log()[offset:]}")


class EventLog:
    """Records every ``on_*`` callback an SDK client or subscription makes, for tests to await.

    It stands in for ``ClientEventHandler`` and ``SubscriptionEventHandler`` alike: the SDK looks
    its handlers up by name, so any ``on_<event>`` attribute records the event's context.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self._unclaimed: list[tuple[str, Any]] = []
        self._arrived = asyncio.Event()

    def __getattr__(self, name: str) -> Callable[[Any], Any]:
        if not name.startswith("on_"):
            raise AttributeError(name)

        async def record(ctx: Any) -> None:
            self.seen.append((name, ctx))
            self._unclaimed.append((name, ctx))
            self._arrived.set()

        return record

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    async def next(self, event: str, timeout: float = 5.0) -> Any:
        """The context of the oldest ``event`` not returned before, waiting for one if needed."""
        async with asyncio.timeout(timeout):
            while True:
                for index, (name, ctx) in enumerate(self._unclaimed):
                    if name == event:
                        del self._unclaimed[index]
                        return ctx
                self._arrived.clear()
                await self._arrived.wait()


def unique_channel() -> str:
    return "chat:" + uuid.uuid4().hex[:12]


@pytest.fixture
def channel() -> str:
    """A channel of the ``chat`` namespace that no other test uses."""
    return unique_channel()


@dataclass
class SdkClient:
    client: centrifuge.Client
    events: EventLog
    use_protobuf: bool

    def subscription(self, channel: str, **options: Any) -> tuple[centrifuge.Subscription, EventLog]:
        events = EventLog()
        sub = self.client.new_subscription(channel, events=events, **options)
        return sub, events


SdkFactory = Callable[..., SdkClient]


@pytest.fixture
async def sdk_clients() -> AsyncIterator[SdkFactory]:
    """Makes centrifuge-python clients (not yet connected); disconnects them after the test."""
    made: list[SdkClient] = []

    def make(server: RotaryServer, *, use_protobuf: bool = False, **options: Any) -> SdkClient:
        events = EventLog()
        options.setdefault("timeout", 5.0)
        options.setdefault("max_reconnect_delay", 0.5)
        client = centrifuge.Client(
            server.ws_url, events=events, use_protobuf=use_protobuf, proxy=None, **options
        )
        made.append(SdkClient(client, events, use_protobuf))
        return made[-1]

    yield make
    for sdk in made:
        await sdk.client.disconnect()
    # disconnect() leaves the WebSocket closing handshake to a background task; let it finish so the
    # socket is closed before the event loop is.
    pending = asyncio.all_tasks() - {asyncio.current_task()}
    if pending:
        await asyncio.wait(pending, timeout=2)


async def assert_served(make: SdkFactory, server: RotaryServer) -> None:
    """A fresh SDK client connects with a valid token, subscribes, and gets its own publication back."""
    sdk = make(server, token=sign_token({"sub": "fresh"}))
    await sdk.client.connect()
    await sdk.client.ready(timeout=5)
    sub, events = sdk.subscription(unique_channel())
    await sub.subscribe()
    await sub.ready(timeout=5)
    await sub.publish({"still": "served"})
    ctx = await events.next("on_publication")
    assert ctx.pub.data == {"still": "served"}


@pytest.fixture
def assert_sdk_served(sdk_clients: SdkFactory) -> Callable[[RotaryServer], Awaitable[None]]:
    """``await assert_sdk_served(server)``: the server still serves a well-behaved client normally."""
    return functools.partial(assert_served, sdk_clients)


NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` binary, once the npm packages the JS scenarios import are installed."""
    path = require_binary("node")
    if not (NODE_MODULES / "centrifuge").is_dir():
        message = "npm packages are not installed (run `npm ci` at the repository root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
async def backend() -> AsyncIterator[ProxyBackend]:
    """A proxy backend (HTTP and GRPC) for this test: helpers.proxy_backend."""
    async with running_backend() as server:
        yield server


@pytest.fixture(params=["http", "grpc"])
def over(request: pytest.FixtureRequest) -> str:
    """The proxy transport a test runs over, each in turn."""
    return str(request.param)
