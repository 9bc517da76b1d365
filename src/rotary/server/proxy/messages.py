"""The proxy protocol messages, generated from ``proto/rotary/proxy.proto``.

See https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

from rotary.server.proxy._pb.proxy_pb2 import (
    BoolValue,
    ConnectRequest,
    ConnectResponse,
    ConnectResult,
    Disconnect,
    Error,
    PublishRequest,
    PublishResponse,
    PublishResult,
    RefreshRequest,
    RefreshResponse,
    RefreshResult,
    RPCRequest,
    RPCResponse,
    RPCResult,
    SubRefreshRequest,
    SubRefreshResponse,
    SubRefreshResult,
    SubscribeOptionOverride,
    SubscribeOptions,
    SubscribeRequest,
    SubscribeResponse,
    SubscribeResult,
)

SERVICE = "centrifugal.centrifugo.proxy.CentrifugoProxy"

__all__ = [
    "SERVICE",
    "BoolValue",
    "ConnectRequest",
    "ConnectResponse",
    "ConnectResult",
    "Disconnect",
    "Error",
    "PublishRequest",
    "PublishResponse",
    "PublishResult",
    "RPCRequest",
    "RPCResponse",
    "RPCResult",
    "RefreshRequest",
    "RefreshResponse",
    "RefreshResult",
    "SubRefreshRequest",
    "SubRefreshResponse",
    "SubRefreshResult",
    "SubscribeOptionOverride",
    "SubscribeOptions",
    "SubscribeRequest",
    "SubscribeResponse",
    "SubscribeResult",
]
