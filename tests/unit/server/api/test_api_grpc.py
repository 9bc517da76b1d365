"""The GRPC server API through a client generated from rotary's api.proto (the committed stub in
rotary.server.api._pb): every method of the service with and without the key, results and errors,
the transport error mode, TLS with a test CA (server and mutual), reflection, the message size
limit, unknown methods, and the start and graceful stop by ``serve``.
See https://centrifugal.dev/docs/server/server_api#grpc-api."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import pytest
from api_settings import API_KEY, make_config
from google.protobuf.message import Message
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from helpers.certs import TestCA
from helpers.env import free_port
from helpers.server import InProcessServer, WsClient, start_in_process

from rotary.engines.base import HistoryQuery
from rotary.server.api._pb import api_pb2 as api
from rotary.server.api._pb.api_pb2_grpc import CentrifugoApiStub
from rotary.server.api.grpc_api import REFLECTION_SERVICES, SERVICE, start_grpc_api
from rotary.server.app import StartError, build_server, serve
from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import GrpcAPIConfig, TLSConfig

WAIT = 10.0
KEY = (("authorization", f"apikey {API_KEY}"),)
PRO_METHODS = {
    "Connections",
    "UpdateUserStatus",
    "GetUserStatus",
    "DeleteUserStatus",
    "BlockUser",
    "UnblockUser",
    "RevokeToken",
    "InvalidateUserTokens",
    "DeviceRegister",
    "DeviceUpdate",
    "DeviceRemove",
    "DeviceList",
    "DeviceTopicList",
    "DeviceTopicUpdate",
    "UserTopicList",
    "UserTopicUpdate",
    "SendPushNotification",
    "UpdatePushStatus",
    "CancelPush",
}


@dataclasses.dataclass
class GrpcStack:
    """A server in process with its GRPC API on a free port, and a stub on a channel to it."""

    http: InProcessServer
    server: aio.Server
    channel: aio.Channel
    stub: CentrifugoApiStub


def grpc_config(**grpc_api: Any) -> Config:
    settings = GrpcAPIConfig(enabled=True, address="127.0.0.1", port=free_port(), key=API_KEY)
    return dataclasses.replace(make_config(), grpc_api=dataclasses.replace(settings, **grpc_api))


@pytest.fixture
async def make_grpc() -> AsyncIterator[Callable[..., Awaitable[GrpcStack]]]:
    """``await make_grpc(credentials=None, **grpc_api)``: a stack whose stub speaks plaintext, or
    TLS with the given channel credentials."""
    made: list[GrpcStack] = []

    async def make(credentials: grpc.ChannelCredentials | None = None, **grpc_api: Any) -> GrpcStack:
        config = grpc_config(**grpc_api)
        http = await start_in_process(config)
        server = await start_grpc_api(http.server.executor, config)
        target = f"127.0.0.1:{config.grpc_api.port}"
        if credentials is None:
            channel = aio.insecure_channel(target)
        else:
            channel = aio.secure_channel(target, credentials)
        made.append(GrpcStack(http, server, channel, CentrifugoApiStub(channel)))
        return made[-1]

    yield make
    for stack in made:
        await stack.channel.close()
        await stack.server.stop(None)
        await stack.http.close()


@pytest.fixture
async def stack(make_grpc: Callable[..., Awaitable[GrpcStack]]) -> GrpcStack:
    return await make_grpc()


async def call(stack: GrpcStack, rpc: str, request: Message, metadata: Any = KEY) -> Any:
    return await getattr(stack.stub, rpc)(request, metadata=metadata, timeout=WAIT)


async def refused(stack: GrpcStack, rpc: str, request: Message, metadata: Any = KEY) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call(stack, rpc, request, metadata)
    return caught.value


def empty_request(rpc: str) -> Message:
    return getattr(api, SERVICE.methods_by_name[rpc].input_type.name)()


async def close_frame(client: WsClient) -> tuple[int, str]:
    """The code and reason of the close frame the server sends. (The client's own close_code may
    read 1006 instead when the server drops the TCP connection before aiohttp writes its close
    reply; the frame received is what counts.)"""
    async with asyncio.timeout(WAIT):
        while True:
            message = await client.ws.receive()
            if message.type is aiohttp.WSMsgType.CLOSE:
                return int(message.data), str(message.extra)
            assert message.type is aiohttp.WSMsgType.TEXT, message


# --- every method -----------------------------------------------------------------------------------


async def test_every_method_with_the_key(stack: GrpcStack) -> None:
    """One call of each method of the service; each must be covered here, so a method added to the
    proto without a test fails."""
    ws = await stack.http.connect("alice", "pres:room", "hist:h")
    seen: set[str] = set()

    async def ok(rpc: str, request: Message) -> Any:
        seen.add(rpc)
        response = await call(stack, rpc, request)
        if "error" in response.DESCRIPTOR.fields_by_name:
            assert not response.HasField("error"), (rpc, response.error)
            assert response.HasField("result"), rpc
            return response.result
        return response

    async def error(rpc: str, request: Message) -> int:
        seen.add(rpc)
        response = await call(stack, rpc, request)
        assert not response.HasField("result"), rpc
        return int(response.error.code)

    published = await ok("Publish", api.PublishRequest(channel="hist:h", data=b'{"n":1}', tags={"k": "v"}))
    assert published.offset == 1 and published.epoch
    pub = await ws.push("pub")
    assert pub["pub"]["data"] == {"n": 1} and pub["pub"]["tags"] == {"k": "v"}

    broadcast = await ok("Broadcast", api.BroadcastRequest(channels=["hist:h", "nope:x"], data=b"2"))
    assert broadcast.responses[0].result.offset == 2
    assert (
        broadcast.responses[1].error.code == 102 and broadcast.responses[1].error.message == "unknown channel"
    )

    history = await ok("History", api.HistoryRequest(channel="hist:h", limit=-1))
    assert [(p.offset, p.data, dict(p.tags)) for p in history.publications] == [
        (1, b'{"n":1}', {"k": "v"}),
        (2, b"2", {}),
    ]
    assert history.offset == 2 and history.epoch == published.epoch
    since = await ok(
        "History",
        api.HistoryRequest(
            channel="hist:h", limit=10, since=api.StreamPosition(offset=1, epoch=published.epoch)
        ),
    )
    assert [p.offset for p in since.publications] == [2]
    assert await ok("HistoryRemove", api.HistoryRemoveRequest(channel="hist:h")) == api.HistoryRemoveResult()

    presence = await ok("Presence", api.PresenceRequest(channel="pres:room"))
    assert [(c, i.user) for c, i in presence.presence.items()] == [(ws.id, "alice")]
    stats = await ok("PresenceStats", api.PresenceStatsRequest(channel="pres:room"))
    assert (stats.num_clients, stats.num_users) == (1, 1)

    channels = await ok("Channels", api.ChannelsRequest(pattern="pres:*"))
    assert {name: info.num_clients for name, info in channels.channels.items()} == {"pres:room": 1}
    info = await ok("Info", api.InfoRequest())
    assert [(n.uid, n.num_clients, n.num_users) for n in info.nodes] == [(stack.http.node.id, 1, 1)]

    override = api.SubscribeOptionOverride(presence=api.BoolValue(value=False))
    subscribe = api.SubscribeRequest(user="alice", channel="pres:extra", data=b'{"i":1}', override=override)
    assert await ok("Subscribe", subscribe) == api.SubscribeResult()
    pushed = await ws.push("subscribe")
    assert pushed["channel"] == "pres:extra" and pushed["subscribe"]["data"] == {"i": 1}
    assert await ok("Unsubscribe", api.UnsubscribeRequest(user="alice", channel="pres:extra")) == (
        api.UnsubscribeResult()
    )
    assert (await ws.push("unsubscribe"))["unsubscribe"]["code"] == 2000
    assert await ok("Refresh", api.RefreshRequest(user="alice", info=b'{"r":1}')) == api.RefreshResult()

    assert await error("RPC", api.RPCRequest(method="anything", params=b"{}")) == 104
    for rpc, request in [
        ("MapPublish", api.MapPublishRequest(channel="news", key="k", data=b"{}")),
        ("MapRemove", api.MapRemoveRequest(channel="news", key="k")),
        ("MapReadState", api.MapReadStateRequest(channel="news")),
        ("MapReadStream", api.MapReadStreamRequest(channel="news")),
        ("MapStats", api.MapStatsRequest(channel="news")),
        ("MapClear", api.MapClearRequest(channel="nope:x")),
        ("SharedPollPublish", api.SharedPollPublishRequest(channel="news", key="k", version=1)),
    ]:
        assert await error(rpc, request) == (102 if request.channel == "nope:x" else 107), rpc  # type: ignore[attr-defined]

    batch = await ok(
        "Batch",
        api.BatchRequest(
            commands=[
                api.Command(publish=api.PublishRequest(channel="hist:b", data=b"1")),
                api.Command(presence_stats=api.PresenceStatsRequest(channel="nope:x")),
                api.Command(connections=api.ConnectionsRequest(user="alice")),
                api.Command(),
                api.Command(history=api.HistoryRequest(channel="hist:b", limit=-1)),
            ]
        ),
    )
    replies = batch.replies
    assert replies[0].publish.offset == 1 and not replies[0].HasField("error")
    assert [r.error.code for r in replies[1:4]] == [102, 104, 104]
    assert [p.data for p in replies[4].history.publications] == [b"1"]

    gone = await stack.http.connect("carol")
    disconnect = api.DisconnectRequest(user="carol", disconnect=api.Disconnect(code=4000, reason="bye"))
    assert await ok("Disconnect", disconnect) == api.DisconnectResult()
    assert await close_frame(gone) == (4000, "bye")

    for rpc in sorted(PRO_METHODS):
        seen.add(rpc)
        error_ = await refused(stack, rpc, empty_request(rpc))
        assert (error_.code(), error_.details()) == (
            grpc.StatusCode.UNIMPLEMENTED,
            f"method {rpc} not implemented",
        )
    assert seen == set(SERVICE.methods_by_name)


@pytest.mark.parametrize("rpc", list(SERVICE.methods_by_name))
@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "apikey nope"),), (("authorization", API_KEY),), (("x-api-key", API_KEY),)],
    ids=["none", "wrong-key", "no-scheme", "http-header"],
)
async def test_every_method_without_the_key_is_unauthenticated(
    stack: GrpcStack, rpc: str, metadata: Any
) -> None:
    error = await refused(stack, rpc, empty_request(rpc), metadata)
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")


async def test_without_a_configured_key_no_metadata_is_needed(make_grpc: Any) -> None:
    stack = await make_grpc(key="")
    result = await call(stack, "Publish", api.PublishRequest(channel="hist:x", data=b"1"), metadata=())
    assert result.result.offset == 1


async def test_a_publication_of_binary_data_reads_back_as_it_was(stack: GrpcStack) -> None:
    """GRPC carries bytes, so data that is not JSON goes in and out of a binary namespace as is."""
    data = bytes(range(256))
    await call(stack, "Publish", api.PublishRequest(channel="bin:x", data=data))
    history = await call(stack, "History", api.HistoryRequest(channel="bin:x", limit=1))
    assert history.result.publications[0].data == data
    error = await call(stack, "Publish", api.PublishRequest(channel="json:x", data=b"\xff"))
    assert error.error.code == 107


# --- errors ------------------------------------------------------------------------------------------


async def test_errors_are_in_the_response_by_default(stack: GrpcStack) -> None:
    response = await call(stack, "Publish", api.PublishRequest(channel="nope:x", data=b"1"))
    assert (response.error.code, response.error.message) == (102, "unknown channel")
    assert not response.HasField("result")


@pytest.mark.parametrize(
    ("request_", "code", "status"),
    [
        (api.PublishRequest(channel="nope:x"), 102, grpc.StatusCode.NOT_FOUND),
        (api.PublishRequest(), 107, grpc.StatusCode.INVALID_ARGUMENT),
        (api.PublishRequest(channel="json:x", data=b"x"), 107, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
@pytest.mark.parametrize("how", ["config", "metadata"])
async def test_transport_error_mode_answers_a_status_with_the_error_as_detail(
    make_grpc: Any, request_: Message, code: int, status: grpc.StatusCode, how: str
) -> None:
    stack = await make_grpc(error_mode="transport" if how == "config" else "")
    metadata = KEY if how == "config" else (*KEY, ("x-centrifugo-error-mode", "transport"))
    with pytest.raises(aio.AioRpcError) as caught:
        await call(stack, "Publish", request_, metadata)
    error = caught.value
    assert error.code() == status
    details = rpc_status.from_call(error)
    assert details is not None and details.code == status.value[0]
    (detail,) = details.details
    unpacked = api.Error()
    assert detail.Unpack(unpacked)
    assert (unpacked.code, unpacked.message) == (code, error.details())


async def test_transport_error_mode_maps_each_code(make_grpc: Any) -> None:
    stack = await make_grpc(error_mode="transport")
    cases = [
        ("History", api.HistoryRequest(channel="news"), grpc.StatusCode.INVALID_ARGUMENT),  # 108
        ("RPC", api.RPCRequest(method="x"), grpc.StatusCode.NOT_FOUND),  # 104
        ("Channels", api.ChannelsRequest(pattern="["), grpc.StatusCode.INTERNAL),  # 100
    ]
    await call(stack, "Publish", api.PublishRequest(channel="hist:h", data=b"1"))
    cases.append(
        (
            "History",
            api.HistoryRequest(channel="hist:h", since=api.StreamPosition(offset=1, epoch="lost")),
            grpc.StatusCode.OUT_OF_RANGE,  # 112
        )
    )
    for rpc, request, status in cases:
        assert (await refused(stack, rpc, request)).code() == status, rpc


async def test_transport_error_mode_leaves_batch_and_broadcast_items_in_the_response(make_grpc: Any) -> None:
    stack = await make_grpc(error_mode="transport")
    batch = await call(
        stack, "Batch", api.BatchRequest(commands=[api.Command(publish=api.PublishRequest(channel="nope:x"))])
    )
    assert batch.replies[0].error.code == 102
    broadcast = await call(stack, "Broadcast", api.BroadcastRequest(channels=["nope:x"], data=b"1"))
    assert broadcast.result.responses[0].error.code == 102


async def test_other_error_mode_metadata_keeps_errors_in_the_response(stack: GrpcStack) -> None:
    metadata = (*KEY, ("x-centrifugo-error-mode", "other"))
    response = await call(stack, "Publish", api.PublishRequest(channel="nope:x"), metadata)
    assert response.error.code == 102


async def test_unknown_methods_and_services_answer_as_grpc_go(stack: GrpcStack) -> None:
    for path, text in [
        (f"/{SERVICE.full_name}/Nope", f"unknown method Nope for service {SERVICE.full_name}"),
        ("/some.Service/Call", "unknown service some.Service"),
    ]:
        method = stack.channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)
        with pytest.raises(aio.AioRpcError) as caught:
            await method(b"", metadata=KEY, timeout=WAIT)
        assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.UNIMPLEMENTED, text)


async def test_max_receive_message_size(make_grpc: Any) -> None:
    stack = await make_grpc(max_receive_message_size=1024)
    small = await call(stack, "Publish", api.PublishRequest(channel="news", data=b"1" * 512))
    assert not small.HasField("error")
    error = await refused(stack, "Publish", api.PublishRequest(channel="news", data=b"1" * 2048))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_reflection_under_both_names_of_grpc_go_when_enabled(make_grpc: Any) -> None:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    symbol = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE.full_name)
    stack = await make_grpc(reflection=True)
    for name in REFLECTION_SERVICES:
        info = stack.channel.stream_stream(
            f"/{name}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        (listed,) = [r async for r in info(iter([request]), timeout=WAIT)]
        assert [s.name for s in listed.list_services_response.service] == sorted(
            (SERVICE.full_name, *REFLECTION_SERVICES)
        )
        (found,) = [r async for r in info(iter([symbol]), timeout=WAIT)]
        assert found.file_descriptor_response.file_descriptor_proto, found

    plain = await make_grpc()
    stub = reflection_pb2_grpc.ServerReflectionStub(plain.channel)
    with pytest.raises(aio.AioRpcError) as caught:
        _ = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=WAIT)]
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- TLS ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Pki:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""

    ca_pem: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = TestCA()
    server = ca.issue("127.0.0.1")
    client = ca.issue("api client", client=True)
    return Pki(ca.cert_pem, server.cert_pem, server.key_pem, client.cert_pem, client.key_pem)


async def test_tls_serves_every_call_encrypted_and_refuses_plaintext(make_grpc: Any, pki: Pki) -> None:
    tls = TLSConfig(enabled=True, cert_pem=pki.server_cert.decode(), key_pem=pki.server_key.decode())
    stack = await make_grpc(grpc.ssl_channel_credentials(root_certificates=pki.ca_pem), tls=tls)
    response = await call(stack, "Publish", api.PublishRequest(channel="hist:t", data=b"1"))
    assert response.result.offset == 1
    assert (await refused(stack, "Info", api.InfoRequest(), ())).code() == grpc.StatusCode.UNAUTHENTICATED
    async with aio.insecure_channel(f"127.0.0.1:{stack.http.config.grpc_api.port}") as plain:
        with pytest.raises(aio.AioRpcError) as caught:
            await CentrifugoApiStub(plain).Info(api.InfoRequest(), metadata=KEY, timeout=WAIT)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_needs_a_client_certificate_of_the_ca(make_grpc: Any, pki: Pki) -> None:
    tls = TLSConfig(
        enabled=True,
        cert_pem=pki.server_cert.decode(),
        key_pem=pki.server_key.decode(),
        client_ca_pem=pki.ca_pem.decode(),
    )
    with_cert = grpc.ssl_channel_credentials(pki.ca_pem, pki.client_key, pki.client_cert)
    stack = await make_grpc(with_cert, tls=tls)
    assert (await call(stack, "Info", api.InfoRequest())).result.nodes
    port = stack.http.config.grpc_api.port
    without = grpc.ssl_channel_credentials(root_certificates=pki.ca_pem)
    async with aio.secure_channel(f"127.0.0.1:{port}", without) as channel:
        with pytest.raises(aio.AioRpcError) as caught:
            await CentrifugoApiStub(channel).Info(api.InfoRequest(), metadata=KEY, timeout=WAIT)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


# --- serve -------------------------------------------------------------------------------------------


async def test_serve_starts_the_api_and_lets_a_call_in_flight_finish() -> None:
    """serve() listens on grpc_api.port; at stop it takes no new call, but one already running (a
    batch of 5000 publications) is answered in full before the node shuts down."""
    config = grpc_config()
    config = dataclasses.replace(
        config, http_server=dataclasses.replace(config.http_server, port=free_port())
    )
    server = build_server(config)
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(server, stop))
    async with aio.insecure_channel(f"127.0.0.1:{config.grpc_api.port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), WAIT)
        stub = CentrifugoApiStub(channel)
        commands = [api.Command(publish=api.PublishRequest(channel="hist:f", data=b"1"))] * 5000
        batch = asyncio.ensure_future(
            stub.Batch(api.BatchRequest(commands=commands), metadata=KEY, timeout=60)
        )
        async with asyncio.timeout(WAIT):  # until the batch runs: its first publication is kept
            while (await server.node.read_history("hist:f", HistoryQuery())).position.offset == 0:
                await asyncio.sleep(0.01)
        stop.set()
        response = await batch
        assert len(response.replies) == 5000 and not any(r.HasField("error") for r in response.replies)
        await asyncio.wait_for(serving, WAIT)
        with pytest.raises(aio.AioRpcError) as caught:
            await stub.Info(api.InfoRequest(), metadata=KEY, timeout=WAIT)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_taken_port_refuses_the_start_naming_the_key() -> None:
    config = grpc_config()
    config = dataclasses.replace(
        config, http_server=dataclasses.replace(config.http_server, port=free_port())
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", config.grpc_api.port))
        taken.listen()
        with pytest.raises(StartError, match=r"^grpc_api\.port: cannot listen on"):
            await serve(build_server(config), asyncio.Event())
