"""``ServerHooks``: the Node hooks built from one Centrifugo config, composed of one part per concern.

See https://centrifugal.dev/docs/server/authentication and
https://centrifugal.dev/docs/server/channel_permissions.
"""

from __future__ import annotations

from rotary.node.hooks import (
    ClientView,
    ConnectDecision,
    ConnectionInfo,
    PublishDecision,
    RefreshDecision,
    SubRefreshDecision,
    SubscribeOptions,
)
from rotary.protocol import pb
from rotary.server.channels import ChannelRules
from rotary.server.config.schema import Config
from rotary.server.hooks.channel_ops import ChannelOpsHooks
from rotary.server.hooks.connect import ConnectHooks
from rotary.server.hooks.grants import Access
from rotary.server.hooks.rpc import RpcHooks
from rotary.server.hooks.subscribe import SubscribeHooks
from rotary.server.tokens import TokenVerifier


class ServerHooks:
    """Implements :class:`rotary.node.hooks.Hooks` from a Centrifugo config and a JWT verifier.

    It only routes: each hook is answered by the part that owns its concern.
    """

    def __init__(self, config: Config, verifier: TokenVerifier) -> None:
        self.channels = ChannelRules(config.channel)
        access = Access(config.client, self.channels)
        self._connect = ConnectHooks(access, verifier)
        self._subscribe = SubscribeHooks(access, verifier)
        self._channel_ops = ChannelOpsHooks(access)
        self._rpc = RpcHooks(config.rpc)

    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        return await self._connect.on_connecting(conn, request)

    async def on_refresh(self, client: ClientView, request: pb.RefreshRequest) -> RefreshDecision:
        return await self._connect.on_refresh(client, request)

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return await self._subscribe.on_subscribe(client, request)

    async def on_sub_refresh(self, client: ClientView, request: pb.SubRefreshRequest) -> SubRefreshDecision:
        return await self._subscribe.on_sub_refresh(client, request)

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision:
        return await self._channel_ops.on_publish(client, request)

    async def on_presence(self, client: ClientView, channel: str) -> None:
        await self._channel_ops.on_presence(client, channel)

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        return await self._channel_ops.on_history(client, request)

    async def on_rpc(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        return await self._rpc.on_rpc(client, request)
