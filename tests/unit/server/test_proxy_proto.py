"""rotary's proxy.proto keeps Centrifugo's wire facts: package, service, methods, messages, fields.

The table is written from Centrifugo v6.9.1's internal/proxyproto/proxy.proto; a backend built
against that file must understand rotary's calls. See https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor as F

from rotary.server.proxy._pb import proxy_pb2

S, B, I64, U32, U64, BOOL, I32 = (
    F.TYPE_STRING,
    F.TYPE_BYTES,
    F.TYPE_INT64,
    F.TYPE_UINT32,
    F.TYPE_UINT64,
    F.TYPE_BOOL,
    F.TYPE_INT32,
)
M = F.TYPE_MESSAGE
BASE = {"client": (1, S), "transport": (2, S), "protocol": (3, S), "encoding": (4, S)}
RESPONSE = {"error": (2, M), "disconnect": (3, M)}

METHODS = {
    "Connect": ("ConnectRequest", "ConnectResponse", False, False),
    "Refresh": ("RefreshRequest", "RefreshResponse", False, False),
    "Subscribe": ("SubscribeRequest", "SubscribeResponse", False, False),
    "Publish": ("PublishRequest", "PublishResponse", False, False),
    "RPC": ("RPCRequest", "RPCResponse", False, False),
    "SubRefresh": ("SubRefreshRequest", "SubRefreshResponse", False, False),
    "SubscribeUnidirectional": ("SubscribeRequest", "StreamSubscribeResponse", False, True),
    "SubscribeBidirectional": ("StreamSubscribeRequest", "StreamSubscribeResponse", True, True),
    "NotifyCacheEmpty": ("NotifyCacheEmptyRequest", "NotifyCacheEmptyResponse", False, False),
    "NotifyChannelState": ("NotifyChannelStateRequest", "NotifyChannelStateResponse", False, False),
    "MapPublish": ("MapPublishRequest", "MapPublishResponse", False, False),
    "MapRemove": ("MapRemoveRequest", "MapRemoveResponse", False, False),
    "SharedPollRefresh": ("SharedPollRefreshRequest", "SharedPollRefreshResponse", False, False),
}

MESSAGES: dict[str, dict[str, tuple[int, int]]] = {
    "Disconnect": {"code": (1, U32), "reason": (2, S)},
    "Error": {"code": (1, U32), "message": (2, S), "temporary": (3, BOOL)},
    "ConnectRequest": {
        **BASE,
        "data": (10, B),
        "b64data": (11, S),
        "name": (12, S),
        "version": (13, S),
        "channels": (14, S),
    },
    "SubscribeOptions": {
        "expire_at": (1, I64),
        "info": (2, B),
        "b64info": (3, S),
        "data": (4, B),
        "b64data": (5, S),
        "override": (6, M),
        "server_tags_filter": (7, M),
        "cache_recover": (8, BOOL),
    },
    "ConnectResult": {
        "user": (1, S),
        "expire_at": (2, I64),
        "info": (3, B),
        "b64info": (4, S),
        "data": (5, B),
        "b64data": (6, S),
        "channels": (7, S),
        "subs": (8, M),
        "meta": (9, B),
        "caps": (10, M),
        "labels": (11, M),
    },
    "ConnectResponse": {"result": (1, M), **RESPONSE},
    "RefreshRequest": {**BASE, "user": (10, S), "meta": (11, B), "labels": (12, M)},
    "RefreshResult": {
        "expired": (1, BOOL),
        "expire_at": (2, I64),
        "info": (3, B),
        "b64info": (4, S),
        "meta": (5, B),
        "caps": (6, M),
    },
    "RefreshResponse": {"result": (1, M), **RESPONSE},
    "SubscribeRequest": {
        **BASE,
        "user": (10, S),
        "channel": (11, S),
        "token": (12, S),
        "meta": (13, B),
        "data": (14, B),
        "b64data": (15, S),
        "labels": (16, M),
    },
    "BoolValue": {"value": (1, BOOL)},
    "Int32Value": {"value": (1, I32)},
    "SubscribeOptionOverride": {
        "presence": (1, M),
        "join_leave": (2, M),
        "force_recovery": (3, M),
        "force_positioning": (4, M),
        "force_push_join_leave": (5, M),
    },
    "SubscribeResult": {
        "expire_at": (1, I64),
        "info": (2, B),
        "b64info": (3, S),
        "data": (4, B),
        "b64data": (5, S),
        "override": (6, M),
        "allow": (7, S),
        "server_tags_filter": (8, M),
    },
    "SubscribeResponse": {"result": (1, M), **RESPONSE},
    "PublishRequest": {
        **BASE,
        "user": (10, S),
        "channel": (11, S),
        "data": (12, B),
        "b64data": (13, S),
        "meta": (14, B),
        "labels": (15, M),
    },
    "PublishResult": {
        "data": (1, B),
        "b64data": (2, S),
        "skip_history": (3, BOOL),
        "tags": (4, M),
        "idempotency_key": (5, S),
        "delta": (6, BOOL),
        "version": (7, U64),
        "version_epoch": (8, S),
    },
    "PublishResponse": {"result": (1, M), **RESPONSE},
    "RPCRequest": {
        **BASE,
        "user": (10, S),
        "method": (11, S),
        "data": (12, B),
        "b64data": (13, S),
        "meta": (14, B),
        "labels": (15, M),
    },
    "RPCResult": {"data": (1, B), "b64data": (2, S)},
    "RPCResponse": {"result": (1, M), **RESPONSE},
    "SubRefreshRequest": {**BASE, "user": (10, S), "channel": (11, S), "meta": (12, B), "labels": (13, M)},
    "SubRefreshResult": {"expired": (1, BOOL), "expire_at": (2, I64), "info": (3, B), "b64info": (4, S)},
    "SubRefreshResponse": {"result": (1, M), **RESPONSE},
    "Publication": {"data": (4, B), "tags": (7, M)},
    "StreamSubscribeRequest": {"subscribe_request": (1, M), "publication": (2, M)},
    "StreamSubscribeResponse": {"subscribe_response": (1, M), "publication": (2, M)},
}


def test_package_and_service() -> None:
    file = proxy_pb2.DESCRIPTOR
    assert file.package == "centrifugal.centrifugo.proxy"
    service = file.services_by_name["CentrifugoProxy"]
    assert service.full_name == "centrifugal.centrifugo.proxy.CentrifugoProxy"
    assert {m.name for m in service.methods} == set(METHODS)
    for method in service.methods:
        request, response, client_streaming, server_streaming = METHODS[method.name]
        assert method.input_type.name == request and method.output_type.name == response, method.name
        assert (method.client_streaming, method.server_streaming) == (client_streaming, server_streaming)


def test_message_fields() -> None:
    for name, fields in MESSAGES.items():
        descriptor = proxy_pb2.DESCRIPTOR.message_types_by_name[name]
        actual = {f.name: (f.number, f.type) for f in descriptor.fields}
        assert actual == fields, name
