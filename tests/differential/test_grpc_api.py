"""The GRPC server API side by side: the same calls, with the same generated client, to Centrifugo
and to rotary, and the same answers (responses, GRPC statuses and their error details).

The client is the stub generated from rotary's api.proto (its wire facts are Centrifugo's, checked
by tests/unit/server/api/test_grpc_descriptors.py). Both servers start from one config but for
``grpc_api.port``: each gets a free port of its own. Answers are compared in protobuf's JSON form,
normalized like every differential record (client ids, epochs, node ids and names).
See https://centrifugal.dev/docs/server/server_api#grpc-api.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status
from helpers.centrifugo import centrifugo_process, reference_config
from helpers.env import free_port
from helpers.server import rotary_process

from differential.conftest import CONFIG
from differential.runner import API_KEY, WAIT, assert_same, normalize, token
from rotary.server.api._pb import api_pb2 as api
from rotary.server.api._pb.api_pb2_grpc import CentrifugoApiStub

KEY = (("authorization", f"apikey {API_KEY}"),)
TRANSPORT = (*KEY, ("x-centrifugo-error-mode", "transport"))
SERVICE = "centrifugal.centrifugo.api.CentrifugoApi"


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    ws_url: str


@dataclass(frozen=True)
class Pair:
    centrifugo: Server
    rotary: Server


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    directory = tmp_path_factory.mktemp("differential-grpc-api")
    ports = {"centrifugo": free_port(), "rotary": free_port()}

    def config(name: str) -> dict[str, Any]:
        grpc_api = {"enabled": True, "address": "127.0.0.1", "port": ports[name], "key": API_KEY}
        return reference_config({**CONFIG, "grpc_api": {**grpc_api, "reflection": True}})

    with contextlib.ExitStack() as stack:
        centrifugo = stack.enter_context(centrifugo_process(directory / "centrifugo", config("centrifugo")))
        rotary = stack.enter_context(
            rotary_process(directory / "rotary", config("rotary"), "--http_server.address", "127.0.0.1")
        )
        yield Pair(
            Server("centrifugo", f"127.0.0.1:{ports['centrifugo']}", centrifugo.ws_url),
            Server("rotary", f"127.0.0.1:{ports['rotary']}", rotary.ws_url),
        )


# --- steps ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of the service; the record is its response, or its status, message and detail."""

    rpc: str
    request: Message
    metadata: tuple[tuple[str, str], ...] = KEY


@dataclass(frozen=True)
class Raw:
    """A unary call to any path with an empty body (unknown methods and services)."""

    path: str
    metadata: tuple[tuple[str, str], ...] = KEY


@dataclass(frozen=True)
class Reflect:
    """One request on a reflection service (v1 or v1alpha: the same messages)."""

    service: str
    request: reflection_pb2.ServerReflectionRequest


@dataclass(frozen=True)
class Connect:
    """A WebSocket client of ``user`` subscribed to ``channels``, open until the scenario ends."""

    user: str
    channels: tuple[str, ...] = ()


Step = Call | Raw | Reflect | Connect


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list[Step] = field(default_factory=list)


def _error(status: aio.AioRpcError) -> dict[str, Any]:
    seen: dict[str, Any] = {"status": status.code().name, "message": status.details()}
    details = rpc_status.from_call(status)
    if details is not None:
        errors = []
        for detail in details.details:
            error = api.Error()
            assert detail.Unpack(error), detail.type_url
            errors.append(MessageToDict(error, preserving_proto_field_name=True))
        seen["details"] = errors
    return seen


def _dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


async def _connect(session: aiohttp.ClientSession, url: str, step: Connect) -> tuple[Any, str]:
    """A JSON-protocol connection: connect, then each subscribe, every reply awaited."""
    ws = await session.ws_connect(url)
    commands = [{"connect": {"token": token(step.user)}}]
    commands += [{"subscribe": {"channel": channel}} for channel in step.channels]
    client = ""
    for number, command in enumerate(commands, 1):
        await ws.send_str(orjson.dumps({"id": number, **command}).decode())
        while True:
            message = await ws.receive(timeout=WAIT)
            replies = [orjson.loads(line) for line in message.data.splitlines() if line]
            reply = next((r for r in replies if r.get("id") == number), None)
            if reply is not None:
                break
        assert "error" not in reply, reply
        client = client or reply["connect"]["client"]
    return ws, client


async def play(server: Server, steps: list[Step]) -> tuple[dict[int, Any], dict[str, str]]:
    """What each call step observed, by step index, and the placeholders of the clients' ids."""
    record: dict[int, Any] = {}
    ids: dict[str, str] = {}
    async with aiohttp.ClientSession() as session, aio.insecure_channel(server.address) as channel:
        stub = CentrifugoApiStub(channel)
        sockets = []
        try:
            for index, step in enumerate(steps):
                if isinstance(step, Connect):
                    ws, client = await _connect(session, server.ws_url, step)
                    sockets.append(ws)
                    ids[client] = f"<client:{step.user}>"
                    continue
                try:
                    if isinstance(step, Call):
                        method = getattr(stub, step.rpc)
                        record[index] = {
                            "response": _dict(
                                await method(step.request, metadata=step.metadata, timeout=WAIT)
                            )
                        }
                    elif isinstance(step, Raw):
                        raw = channel.unary_unary(
                            step.path, request_serializer=bytes, response_deserializer=bytes
                        )
                        record[index] = {
                            "response": (await raw(b"", metadata=step.metadata, timeout=WAIT)).hex()
                        }
                    else:
                        info = channel.stream_stream(
                            f"/{step.service}/ServerReflectionInfo",
                            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
                        )
                        responses = [r async for r in info(iter([step.request]), timeout=WAIT)]
                        record[index] = {"responses": [_reflection(r) for r in responses]}
                except aio.AioRpcError as status:
                    record[index] = _error(status)
        finally:
            for ws in sockets:
                await ws.close()
    return record, ids


def _reflection(response: reflection_pb2.ServerReflectionResponse) -> dict[str, Any]:
    """A reflection answer, with the file descriptors reduced to the names of what they declare
    (rotary's file is its own, named rotary/api.proto; what it declares is Centrifugo's)."""
    seen = _dict(response)
    files = seen.pop("file_descriptor_response", None)
    if files is not None:
        declared = []
        for blob in response.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(blob)
            declared.append(
                {
                    "package": file.package,
                    "services": [s.name for s in file.service],
                    "messages": sorted(m.name for m in file.message_type),
                }
            )
        seen["declared"] = declared
    return seen


# --- scenarios --------------------------------------------------------------------------------------

PRO = [
    ("Connections", api.ConnectionsRequest(user="u")),
    ("UpdateUserStatus", api.UpdateUserStatusRequest(users=["u"])),
    ("GetUserStatus", api.GetUserStatusRequest(users=["u"])),
    ("DeleteUserStatus", api.DeleteUserStatusRequest(users=["u"])),
    ("BlockUser", api.BlockUserRequest(user="u")),
    ("UnblockUser", api.UnblockUserRequest(user="u")),
    ("RevokeToken", api.RevokeTokenRequest(uid="x")),
    ("InvalidateUserTokens", api.InvalidateUserTokensRequest(user="u")),
    ("DeviceRegister", api.DeviceRegisterRequest(provider="fcm", token="t", platform="ios")),
    ("DeviceUpdate", api.DeviceUpdateRequest(ids=["d"])),
    ("DeviceRemove", api.DeviceRemoveRequest(ids=["d"])),
    ("DeviceList", api.DeviceListRequest()),
    ("DeviceTopicList", api.DeviceTopicListRequest()),
    ("DeviceTopicUpdate", api.DeviceTopicUpdateRequest(device_id="d", op="add", topics=["t"])),
    ("UserTopicList", api.UserTopicListRequest()),
    ("UserTopicUpdate", api.UserTopicUpdateRequest(user="u", op="add", topics=["t"])),
    ("SendPushNotification", api.SendPushNotificationRequest()),
    ("UpdatePushStatus", api.UpdatePushStatusRequest(analytics_uid="a", status="delivered")),
    ("CancelPush", api.CancelPushRequest(uid="x")),
]

MAP = [
    ("MapPublish", api.MapPublishRequest(channel="plain:m", key="k", data=b"{}")),
    ("MapPublish", api.MapPublishRequest(channel="plain:m")),
    ("MapPublish", api.MapPublishRequest(channel="nope:m", key="k")),
    ("MapRemove", api.MapRemoveRequest(channel="plain:m", key="k")),
    ("MapRemove", api.MapRemoveRequest(key="k")),
    ("MapReadState", api.MapReadStateRequest(channel="chat:m")),
    ("MapReadState", api.MapReadStateRequest(channel="nope:m")),
    ("MapReadStream", api.MapReadStreamRequest(channel="chat:m", since_offset=1)),
    ("MapStats", api.MapStatsRequest(channel="plain:m")),
    ("MapStats", api.MapStatsRequest()),
    ("MapClear", api.MapClearRequest(channel="plain:m")),
    ("SharedPollPublish", api.SharedPollPublishRequest(channel="plain:m", key="k", version=1)),
    ("SharedPollPublish", api.SharedPollPublishRequest(channel="plain:m", key="k")),
    ("SharedPollPublish", api.SharedPollPublishRequest(channel="nope:m", key="k", version=1)),
]

SCENARIOS = [
    Scenario("info", [Call("Info", api.InfoRequest())]),
    Scenario(
        "publish-and-history",
        [
            Call("Publish", api.PublishRequest(channel="chat:h1", data=b'{"a":1}', tags={"t": "1"})),
            Call("Publish", api.PublishRequest(channel="chat:h1", b64data="aGk=", idempotency_key="i")),
            Call("Publish", api.PublishRequest(channel="chat:h1", b64data="aGk=", idempotency_key="i")),
            Call("History", api.HistoryRequest(channel="chat:h1", limit=-1)),
            Call("History", api.HistoryRequest(channel="chat:h1", limit=1, reverse=True)),
            Call("History", api.HistoryRequest(channel="chat:h1", since=api.StreamPosition(offset=1))),
            Call("HistoryRemove", api.HistoryRemoveRequest(channel="chat:h1")),
            Call("History", api.HistoryRequest(channel="chat:h1", limit=-1)),
        ],
    ),
    Scenario(
        "publish-errors",
        [
            Call("Publish", api.PublishRequest(data=b"{}")),
            Call("Publish", api.PublishRequest(channel="nope:x", data=b"{}")),
            Call("Publish", api.PublishRequest(channel="plain:p", b64data="!!")),
            Call("Publish", api.PublishRequest(channel="plain:p", data=b"")),
            Call("History", api.HistoryRequest(channel="plain:p")),
            Call("HistoryRemove", api.HistoryRemoveRequest(channel="plain:p")),
            Call("Presence", api.PresenceRequest(channel="plain:p")),
            Call("PresenceStats", api.PresenceStatsRequest()),
        ],
    ),
    Scenario(
        "broadcast",
        [
            Call(
                "Broadcast", api.BroadcastRequest(channels=["chat:b1", "nope:b", "plain:b2", ""], data=b"1")
            ),
            Call("Broadcast", api.BroadcastRequest(data=b"1")),
        ],
    ),
    Scenario(
        "connections",
        [
            Connect("grpc-ann", ("chat:room1",)),
            Connect("grpc-bob", ("chat:room1", "chat:room2")),
            Call("Presence", api.PresenceRequest(channel="chat:room1")),
            Call("PresenceStats", api.PresenceStatsRequest(channel="chat:room1")),
            Call("Channels", api.ChannelsRequest(pattern="chat:room*")),
            Call("Subscribe", api.SubscribeRequest(user="grpc-ann", channel="chat:room3", data=b'{"d":1}')),
            Call("Subscribe", api.SubscribeRequest(user="grpc-ann", channel="nope:x")),
            Call("Channels", api.ChannelsRequest(pattern="chat:room*")),
            Call("Unsubscribe", api.UnsubscribeRequest(user="grpc-ann", channel="chat:room3")),
            Call("Refresh", api.RefreshRequest(user="grpc-ann", info=b'{"r":1}')),
            Call("Disconnect", api.DisconnectRequest(user="grpc-bob", disconnect=api.Disconnect(code=4000))),
            Call("Channels", api.ChannelsRequest(pattern="[")),
        ],
    ),
    Scenario(
        "rpc",
        [
            Call("RPC", api.RPCRequest()),
            Call("RPC", api.RPCRequest(method="getUser", params=b"{}")),
        ],
    ),
    Scenario(
        "batch",
        [
            Call(
                "Batch",
                api.BatchRequest(
                    commands=[
                        api.Command(publish=api.PublishRequest(channel="chat:bt", data=b"1")),
                        api.Command(presence_stats=api.PresenceStatsRequest(channel="nope:x")),
                        api.Command(connections=api.ConnectionsRequest(user="u")),
                        api.Command(),
                        api.Command(map_stats=api.MapStatsRequest(channel="plain:m")),
                        api.Command(history=api.HistoryRequest(channel="chat:bt", limit=-1)),
                        api.Command(
                            publish=api.PublishRequest(channel="chat:bt", data=b"2"),
                            history=api.HistoryRequest(channel="chat:bt"),
                        ),
                    ]
                ),
            ),
            Call("Batch", api.BatchRequest(parallel=True)),
        ],
    ),
    Scenario("map-and-shared-poll", [Call(rpc, request) for rpc, request in MAP]),
    Scenario("pro", [Call(rpc, request) for rpc, request in PRO]),
    Scenario(
        "without-key",
        [
            Call("Publish", api.PublishRequest(channel="plain:k", data=b"{}"), ()),
            Call("Info", api.InfoRequest(), (("authorization", "apikey nope"),)),
            Call("Info", api.InfoRequest(), (("authorization", API_KEY),)),
            Call("Info", api.InfoRequest(), (("authorization", f"Apikey {API_KEY}"),)),
            Call("Info", api.InfoRequest(), (("x-api-key", API_KEY),)),
            Call("Connections", api.ConnectionsRequest(), ()),
            Call("Batch", api.BatchRequest(), ()),
            Raw(f"/{SERVICE}/Nope", ()),
        ],
    ),
    Scenario(
        "transport-error-mode",
        [
            Call("Publish", api.PublishRequest(channel="nope:x", data=b"{}"), TRANSPORT),
            Call("Publish", api.PublishRequest(data=b"{}"), TRANSPORT),
            Call("History", api.HistoryRequest(channel="plain:t"), TRANSPORT),
            Call("RPC", api.RPCRequest(method="x"), TRANSPORT),
            Call("Channels", api.ChannelsRequest(pattern="["), TRANSPORT),
            Call("Publish", api.PublishRequest(channel="chat:t", data=b"1"), TRANSPORT),
            Call(
                "History",
                api.HistoryRequest(channel="chat:t", since=api.StreamPosition(offset=1, epoch="lost")),
                TRANSPORT,
            ),
            Call("MapStats", api.MapStatsRequest(channel="plain:t"), TRANSPORT),
            Call("Broadcast", api.BroadcastRequest(channels=["nope:x"], data=b"1"), TRANSPORT),
            Call("Broadcast", api.BroadcastRequest(data=b"1"), TRANSPORT),
            Call(
                "Batch",
                api.BatchRequest(commands=[api.Command(publish=api.PublishRequest(channel="nope:x"))]),
                TRANSPORT,
            ),
            Call("Connections", api.ConnectionsRequest(), TRANSPORT),
            Call(
                "Publish", api.PublishRequest(channel="nope:x"), (*KEY, ("x-centrifugo-error-mode", "other"))
            ),
        ],
    ),
    Scenario(
        "unknown-methods",
        [Raw(f"/{SERVICE}/Nope"), Raw("/some.Service/Call"), Raw("/grpc.health.v1.Health/Check")],
    ),
    Scenario(
        "reflection",
        [
            Reflect(name, reflection_pb2.ServerReflectionRequest(list_services=""))
            for name in ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
        ]
        + [
            Reflect(
                "grpc.reflection.v1.ServerReflection",
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
            )
        ],
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_grpc_api(pair: Pair, scenario: Scenario) -> None:
    observed = {}
    for server in (pair.centrifugo, pair.rotary):
        record, ids = await play(server, scenario.steps)
        observed[server.name] = normalize(record, ids)
    assert_same(f"grpc-api/{scenario.name}", observed["centrifugo"], observed["rotary"], scenario.steps)
