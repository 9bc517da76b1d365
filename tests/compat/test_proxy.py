"""Proxies against real backends: centrifuge-python through rotary to an aiohttp app and a grpc.aio
CentrifugoProxy server, and the failure codes compared with Centrifugo's for the same backend.

See https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import websockets
from centrifuge import ReplyError
from centrifuge.protocol import client_pb2
from helpers.centrifugo import centrifugo_process
from helpers.certs import TestCA
from helpers.env import free_port
from helpers.proxy_backend import Hang, ProxyBackend, Status, running_backend
from test_bad_input import _read_varint as read_varint
from test_bad_input import open_ws, pb_frame

pytestmark = pytest.mark.compat

Start = Callable[[dict[str, Any]], Any]


@pytest.fixture(params=[False, True], ids=["json", "protobuf"])
def use_protobuf(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def proxy_config(backend: ProxyBackend, over: str) -> dict[str, Any]:
    """Connect through the default connect proxy; channel and RPC proxies by name ("backend")."""
    common = {"timeout": "3s", "http_headers": ["cookie"]}
    static = {"http": {"static_headers": {"x-static": "s1"}}, "grpc": {"static_metadata": {"x-static": "s1"}}}
    named = [
        {"name": f"{kind}-px", "endpoint": backend.endpoint(over, kind), **common, **static}
        for kind in ("subscribe", "publish", "sub_refresh", "rpc")
    ]
    return {
        "client": {
            "proxy": {
                "connect": {
                    "enabled": True,
                    "endpoint": backend.endpoint(over, "connect"),
                    **common,
                    **static,
                }
            }
        },
        "proxies": named,
        "channel": {
            "namespaces": [
                {
                    "name": "px",
                    "subscribe_proxy_enabled": True,
                    "subscribe_proxy_name": "subscribe-px",
                    "publish_proxy_enabled": True,
                    "publish_proxy_name": "publish-px",
                    "allow_history_for_subscriber": True,
                    "history_size": 10,
                    "history_ttl": "60s",
                },
                {"name": "open", "allow_subscribe_for_client": True},
            ]
        },
        "rpc": {
            "namespaces": [{"name": "app", "proxy_enabled": True, "proxy_name": "rpc-px"}],
            "ping": {"enabled": True},
        },
    }


def data_of(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, bytes) else value


async def test_every_proxy_kind_through_the_sdk(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any, over: str, use_protobuf: bool
) -> None:
    backend.answers["connect"] = lambda req: {
        "result": {
            "user": "alice",
            "info": {"role": "admin"},
            "data": {"hello": "world"},
            "channels": ["open:news"],
        }
    }
    backend.answers["subscribe"] = lambda req: {
        "result": {"info": {"seat": 7}, "data": {"welcome": req["channel"]}}
    }
    backend.answers["publish"] = lambda req: {"result": {"data": {"text": "rewritten", "was": req["data"]}}}
    backend.answers["rpc"] = lambda req: {"result": {"data": {"answer": 42, "method": req["method"]}}}
    server = start_rotary(proxy_config(backend, over))
    sdk = sdk_clients(server, use_protobuf=use_protobuf, headers={"Cookie": "session=abc"})
    await sdk.client.connect()
    connected = await sdk.events.next("on_connected")
    assert data_of(connected.data) == {"hello": "world"}
    server_sub = await sdk.events.next("on_subscribed")
    assert server_sub.channel == "open:news"

    sub, events = sdk.subscription("px:room")
    await sub.subscribe()
    subscribed = await events.next("on_subscribed")
    assert data_of(subscribed.data) == {"welcome": "px:room"}

    payload = orjson.dumps({"text": "hi"}) if use_protobuf else {"text": "hi"}
    await sub.publish(payload)
    publication = await events.next("on_publication")
    assert data_of(publication.pub.data) == {"text": "rewritten", "was": {"text": "hi"}}
    assert publication.pub.info.user == "alice"

    reply = await sdk.client.rpc("app:answer", orjson.dumps({"q": 1}) if use_protobuf else {"q": 1})
    assert data_of(reply.data) == {"answer": 42, "method": "app:answer"}
    assert (await sdk.client.rpc("ping", {} if not use_protobuf else b"{}")).data in (None, b"", {})

    connect = backend.requests("connect")[0]
    protocol = "protobuf" if use_protobuf else "json"
    assert connect.body["transport"] == "websocket" and connect.body["protocol"] == protocol
    assert connect.body["encoding"] == "json" and connect.body["client"] == connected.client
    assert connect.headers["cookie"] == "session=abc" and connect.headers["x-static"] == "s1"
    for kind in ("subscribe", "publish", "rpc"):
        seen = backend.requests(kind)[0]
        assert seen.body["user"] == "alice" and seen.headers["cookie"] == "session=abc", kind
    assert backend.requests("publish")[0].body["data"] == {"text": "hi"}


async def test_refusals_reach_the_client_as_sent(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any, over: str
) -> None:
    backend.answers["connect"] = lambda req: {"result": {"user": "bob"}}
    backend.answers["rpc"] = lambda req: {"error": {"code": 1001, "message": "not today"}}
    backend.answers["subscribe"] = lambda req: {
        "error": {"code": 403, "message": "forbidden", "temporary": False}
    }
    server = start_rotary(proxy_config(backend, over))
    sdk = sdk_clients(server)
    await sdk.client.connect()
    await sdk.client.ready(timeout=5)
    with pytest.raises(ReplyError) as info:
        await sdk.client.rpc("app:x", {})
    assert (info.value.code, info.value.message) == (1001, "not today")
    sub, events = sdk.subscription("px:closed")
    await sub.subscribe()
    unsubscribed = await events.next("on_unsubscribed")  # a permanent subscribe error ends it
    assert (unsubscribed.code, unsubscribed.reason) == (403, "forbidden")

    backend.answers["connect"] = lambda req: {"disconnect": {"code": 4501, "reason": "go away"}}
    other = sdk_clients(server)
    await other.client.connect()
    disconnected = await other.events.next("on_disconnected")
    assert (disconnected.code, disconnected.reason) == (4501, "go away")


# -- failure modes, side by side with Centrifugo ---------------------------------------------------


async def first_answer(ws_url: str, command: dict[str, Any]) -> tuple[str, Any]:
    """("reply", the reply's error or result) or ("close", code) for one command on a fresh socket."""
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps(command))
        message = await ws.receive(timeout=10)
        if message.type == aiohttp.WSMsgType.TEXT:
            reply = json.loads(message.data.splitlines()[0])
            return "reply", reply.get("error") or sorted(reply.get("connect", {}))
        return "close", ws.close_code


FAILURES: dict[str, Any] = {
    "status-500": lambda req: Status(500),
    "status-403-transformed": lambda req: Status(403),
    "status-404-untransformed": lambda req: Status(404),
    "malformed": lambda req: b"{not json",
    "wrong-type": lambda req: {"result": {"user": 42}},
    "timeout": lambda req: Hang(),
    "disconnect-4000": lambda req: {"disconnect": {"code": 4000, "reason": "custom"}},
    "error-400": lambda req: {"error": {"code": 400, "message": "custom", "temporary": True}},
    "bad-base64": lambda req: {"result": {"user": "u", "b64info": "%%%"}},
}


@pytest.mark.parametrize("failure", [*FAILURES, "refused"])
async def test_connect_failures_answer_as_centrifugo(
    backend: ProxyBackend, start_rotary: Start, tmp_path: Path, failure: str
) -> None:
    if failure == "refused":
        url = f"http://127.0.0.1:{free_port()}/connect"
    else:
        backend.answers["connect"] = FAILURES[failure]
        url = backend.http_endpoint("connect")
    connect_proxy = {
        "enabled": True,
        "endpoint": url,
        "timeout": "500ms",
        "http": {
            "status_to_code_transforms": [
                {"status_code": 403, "to_error": {"code": 403, "message": "forbidden", "temporary": False}}
            ]
        },
    }
    config = {"client": {"proxy": {"connect": connect_proxy}, "allowed_origins": ["*"]}}
    rotary = start_rotary(config)
    command = {"id": 1, "connect": {}}
    with centrifugo_process(tmp_path / "centrifugo", config) as centrifugo:
        expected = await first_answer(centrifugo.ws_url, command)
    got = await first_answer(rotary.ws_url, command)
    assert got == expected
    # the server stays healthy: a good backend answer connects right after
    backend.answers["connect"] = lambda req: {"result": {"user": "u"}}
    if failure != "refused":
        assert (await first_answer(rotary.ws_url, command))[0] == "reply"


COMMAND_FAILURES: dict[str, Any] = {
    "status-500": lambda req: Status(500),
    "malformed": lambda req: b"[1, 2",
    "timeout": lambda req: Hang(),
    "error-1500": lambda req: {"error": {"code": 1500, "message": "app error"}},
    "error-odd-code": lambda req: {"error": {"code": 3000, "message": "odd"}},
    "disconnect-4999": lambda req: {"disconnect": {"code": 4999, "reason": "bye"}},
    "no-result": lambda req: {},
    "status-403-to-error": lambda req: Status(403),
    "status-410-to-disconnect": lambda req: Status(410),
    "wrong-type": lambda req: {"result": {"data": 5, "b64data": 5, "b64info": 5}},
    "bad-base64": lambda req: {"result": {"b64data": "%%%", "b64info": "%%%"}},
}
"""Each also with the backend's port closed (``refused``)."""

TRANSFORMS = [
    {"status_code": 403, "to_error": {"code": 403, "message": "forbidden", "temporary": True}},
    {"status_code": 410, "to_disconnect": {"code": 4410, "reason": "gone"}},
]


async def command_answer(ws_url: str, command: dict[str, Any]) -> tuple[str, Any]:
    """After an anonymous connect: ("reply", error or result keys) or ("close", code) for ``command``."""
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps({"id": 1, "connect": {}}))
        await ws.receive(timeout=10)
        await ws.send_str(json.dumps({"id": 2, **command}))
        message = await ws.receive(timeout=10)
        if message.type == aiohttp.WSMsgType.TEXT:
            reply = json.loads(message.data.splitlines()[0])
            body = reply.get("error") or {k: sorted(v) for k, v in reply.items() if k != "id"}
            return "reply", body
        return "close", message.data if message.type == aiohttp.WSMsgType.CLOSE else ws.close_code


@pytest.mark.parametrize("kind", ["subscribe", "publish", "rpc"])
@pytest.mark.parametrize("failure", [*COMMAND_FAILURES, "refused"])
async def test_command_failures_answer_as_centrifugo(
    backend: ProxyBackend, start_rotary: Start, tmp_path: Path, kind: str, failure: str
) -> None:
    if failure == "refused":
        url = f"http://127.0.0.1:{free_port()}/{kind}"
    else:
        backend.answers[kind] = COMMAND_FAILURES[failure]
        url = backend.http_endpoint(kind)
    proxy = {"endpoint": url, "timeout": "500ms", "http": {"status_to_code_transforms": TRANSFORMS}}
    config = {
        "client": {"allow_anonymous_connect_without_token": True, "allowed_origins": ["*"]},
        "channel": {
            "proxy": {"subscribe": proxy, "publish": proxy},
            "namespaces": [
                {
                    "name": "px",
                    "subscribe_proxy_enabled": kind == "subscribe",
                    "publish_proxy_enabled": kind == "publish",
                }
            ],
        },
        "rpc": {"proxy": proxy, "without_namespace": {"proxy_enabled": kind == "rpc"}},
    }
    command = {
        "subscribe": {"subscribe": {"channel": "px:a"}},
        "publish": {"publish": {"channel": "px:a", "data": {"x": 1}}},
        "rpc": {"rpc": {"method": "m", "data": {"x": 1}}},
    }[kind]
    rotary = start_rotary(config)
    with centrifugo_process(tmp_path / "centrifugo", config) as centrifugo:
        expected = await command_answer(centrifugo.ws_url, command)
    assert await command_answer(rotary.ws_url, command) == expected


async def test_binary_encoding_credentials_and_compression(
    backend: ProxyBackend, start_rotary: Start, sdk_clients: Any, over: str
) -> None:
    """binary_encoding: payloads travel as b64data both ways; GRPC adds the per-call credentials
    (and gzip compression), HTTP the static headers."""
    secret = bytes(range(256))
    backend.answers["connect"] = lambda req: {
        "result": {
            "user": "bin",
            "b64data": base64.b64encode(base64.b64decode(req["b64data"])[::-1]).decode(),
        }
    }
    backend.answers["rpc"] = lambda req: {"result": {"b64data": req["b64data"]}}
    proxy = {
        "endpoint": backend.endpoint(over, "connect"),
        "timeout": "3s",
        "binary_encoding": True,
        "http": {"static_headers": {"authorization": "Bearer http"}},
        "grpc": {"credentials_key": "authorization", "credentials_value": "Bearer grpc", "compression": True},
    }
    rpc_proxy = {**proxy, "endpoint": backend.endpoint(over, "rpc")}
    server = start_rotary(
        {
            "client": {"proxy": {"connect": {"enabled": True, **proxy}}},
            "rpc": {"proxy": rpc_proxy, "without_namespace": {"proxy_enabled": True}},
        }
    )
    sdk = sdk_clients(server, use_protobuf=True, data=secret)
    await sdk.client.connect()
    connected = await sdk.events.next("on_connected")
    assert connected.data == secret[::-1]
    assert (await sdk.client.rpc("echo", secret)).data == secret
    seen = backend.requests("connect")[0]
    assert seen.body["encoding"] == "binary" and "data" not in seen.body
    assert seen.headers["authorization"] == f"Bearer {over}"


def tls_connect_proxy(server: ProxyBackend, over: str, tls: dict[str, Any]) -> dict[str, Any]:
    """A connect proxy to ``server`` with ``tls`` for both transports."""
    endpoint = server.endpoint(over, "connect")
    return {
        "enabled": True,
        "endpoint": endpoint,
        "timeout": "3s",
        "http": {"tls": tls},
        "grpc": {"tls": tls},
    }


async def test_tls_towards_the_backend(start_rotary: Start, sdk_clients: Any, over: str) -> None:
    """http.tls / grpc.tls with the backend's CA: rotary verifies the backend and connects."""
    ca = TestCA()
    async with running_backend(tls=ca.issue("localhost")) as server:
        server.answers["connect"] = lambda req: {"result": {"user": "tls", "data": {"over": "tls"}}}
        tls = {"enabled": True, "server_ca_pem": ca.cert_pem.decode()}
        rotary = start_rotary({"client": {"proxy": {"connect": tls_connect_proxy(server, over, tls)}}})
        sdk = sdk_clients(rotary)
        await sdk.client.connect()
        assert (await sdk.events.next("on_connected")).data == {"over": "tls"}


async def protobuf_answer(server: Any, connect: client_pb2.ConnectRequest, command: Any) -> tuple[str, Any]:
    """Over the Protobuf protocol: ("reply", error code or the reply's kind) or ("close", code) for
    the connect, then (when it succeeded and ``command`` is given) for ``command``."""
    ws = await open_ws(server, protobuf=True)
    try:
        commands = [client_pb2.Command(id=1, connect=connect)]
        if command is not None:
            commands.append(command)
        answers: list[tuple[str, Any]] = []
        for sent in commands:
            await ws.send(pb_frame(sent))
            try:
                frame = await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as closed:
                return "close", closed.rcvd.code if closed.rcvd else None
            assert isinstance(frame, bytes)
            length, start = read_varint(frame)
            reply = client_pb2.Reply.FromString(frame[start : start + length])
            answers.append(("reply", reply.error.code if reply.HasField("error") else kind_of(reply)))
            if reply.HasField("error"):
                break
        return answers[-1]
    finally:
        await ws.close()


def kind_of(reply: client_pb2.Reply) -> str:
    return next(field.name for field, _ in reply.ListFields() if field.name != "id")


NOT_JSON = b"\x00\xffnot json"


@pytest.mark.parametrize("kind", ["connect", "subscribe", "publish", "rpc"])
async def test_binary_data_without_binary_encoding_answers_as_centrifugo(
    backend: ProxyBackend, start_rotary: Start, tmp_path: Path, kind: str
) -> None:
    """A Protobuf client's data that is not JSON cannot be written into the HTTP proxy's JSON body
    (binary_encoding off): Centrifugo never calls the backend and answers the client an internal
    error; rotary does the same and stays healthy."""
    backend.answers["connect"] = lambda req: {"result": {"user": "pb"}}
    proxy = {"endpoint": backend.http_endpoint(kind), "timeout": "3s"}
    config = {
        "client": {"allow_anonymous_connect_without_token": True, "allowed_origins": ["*"]},
        "channel": {
            "proxy": {"subscribe": proxy, "publish": proxy},
            "namespaces": [{"name": "px", "subscribe_proxy_enabled": True, "publish_proxy_enabled": True}],
        },
        "rpc": {"proxy": proxy, "without_namespace": {"proxy_enabled": True}},
    }
    if kind == "connect":
        config["client"]["proxy"] = {"connect": {"enabled": True, **proxy}}
    connect = client_pb2.ConnectRequest(data=NOT_JSON if kind == "connect" else b"")
    command = {
        "connect": None,
        "subscribe": client_pb2.Command(
            id=2, subscribe=client_pb2.SubscribeRequest(channel="px:a", data=NOT_JSON)
        ),
        "publish": client_pb2.Command(id=2, publish=client_pb2.PublishRequest(channel="px:a", data=NOT_JSON)),
        "rpc": client_pb2.Command(id=2, rpc=client_pb2.RPCRequest(method="m", data=NOT_JSON)),
    }[kind]
    rotary = start_rotary(config)
    with centrifugo_process(tmp_path / "centrifugo", config) as centrifugo:
        expected = await protobuf_answer(centrifugo, connect, command)
    assert not backend.requests(kind), "Centrifugo sent no request to the backend"
    assert expected == ("reply", 100)
    assert await protobuf_answer(rotary, connect, command) == expected
    assert not backend.requests(kind)
    good = client_pb2.ConnectRequest(data=b'{"ok": true}')
    assert (await protobuf_answer(rotary, good, None))[0] == "reply"


async def test_tls_without_verification_towards_the_backend(
    start_rotary: Start, tmp_path: Path, over: str
) -> None:
    """http.tls / grpc.tls with insecure_skip_verify: a certificate rotary cannot verify (no CA given,
    and a server name it does not hold) is accepted, the traffic still TLS (the backend speaks
    nothing else); without the option the same backend is refused (internal error 100). Centrifugo
    answers the same in both cases."""
    async with running_backend(tls=TestCA().issue("localhost")) as server:
        server.answers["connect"] = lambda req: {"result": {"user": "tls", "data": {"over": "tls"}}}
        for skip in (True, False):
            tls = {"enabled": True, "insecure_skip_verify": skip, "server_name": "elsewhere.example"}
            connect = tls_connect_proxy(server, over, tls)
            config = {"client": {"proxy": {"connect": connect}, "allowed_origins": ["*"]}}
            rotary = start_rotary(config)
            answer = await first_answer(rotary.ws_url, {"id": 1, "connect": {}})
            with centrifugo_process(tmp_path / f"centrifugo-{skip}", config) as centrifugo:
                assert await first_answer(centrifugo.ws_url, {"id": 1, "connect": {}}) == answer
            if skip:
                assert answer[0] == "reply" and "client" in answer[1], answer
                assert server.requests("connect")
            else:
                assert answer[0] == "reply" and answer[1]["code"] == 100, answer


async def test_killed_rotary_leaves_no_relay_socket_on_disk(
    start_rotary: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay of grpc.tls.insecure_skip_verify listens where nothing outlives a SIGKILLed rotary
    (no socket file, no directory in the temporary folder), and refuses a process other than
    rotary that finds its name."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    async with running_backend(tls=TestCA().issue("localhost")) as server:
        server.answers["connect"] = lambda req: {"result": {"user": "tls"}}
        tls = {"enabled": True, "insecure_skip_verify": True}
        rotary = start_rotary({"client": {"proxy": {"connect": tls_connect_proxy(server, "grpc", tls)}}})
        answer = await first_answer(rotary.ws_url, {"id": 1, "connect": {}})
        assert answer[0] == "reply" and "client" in answer[1], answer
        relays = [line.split()[-1] for line in Path("/proc/net/unix").read_text().splitlines()]
        name = next(path for path in relays if path.startswith("@rotary-grpc-tls-"))
        stranger = await asyncio.open_unix_connection("\0" + name[1:])
        assert await asyncio.wait_for(stranger[0].read(), 10) == b""  # closed: not rotary's own pid
        stranger[1].close()
        rotary.process.process.kill()
        rotary.process.process.wait()
    assert list(temporary.iterdir()) == []
