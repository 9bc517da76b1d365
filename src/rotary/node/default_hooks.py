"""Hooks for a Node built without any: everyone may connect anonymously, subscribe and publish.

This is the embedding default for development and tests; a real application passes its own Hooks.
Presence and history stay off (108), and RPC has no methods (104).
"""

from __future__ import annotations

from rotary.engines.base import PublishOptions
from rotary.node.errors import ClientError
from rotary.node.hooks import (
    ClientView,
    ConnectDecision,
    ConnectionInfo,
    PublishDecision,
    RefreshDecision,
    SubRefreshDecision,
    SubscribeOptions,
)
from rotary.protocol import codes, pb


class AllowAllHooks:
    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        return ConnectDecision(user="")

    async def on_refresh(self, client: ClientView, request: pb.RefreshRequest) -> RefreshDecision:
        return RefreshDecision()

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions()

    async def on_sub_refresh(self, client: ClientView, request: pb.SubRefreshRequest) -> SubRefreshDecision:
        return SubRefreshDecision()

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision:
        info = pb.ClientInfo(user=client.user, client=client.id, conn_info=client.conn_info)
        return PublishDecision(request.data, PublishOptions(client_info=info))

    async def on_presence(self, client: ClientView, channel: str) -> None:
        raise ClientError(codes.ERROR_NOT_AVAILABLE)

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        raise ClientError(codes.ERROR_NOT_AVAILABLE)

    async def on_rpc(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        raise ClientError(codes.ERROR_METHOD_NOT_FOUND)
