"""``ServerHooks``: the Node hooks built from one Centrifugo config, composed of one part per concern.

See https://centrifugal.dev/docs/server/authentication and
https://centrifugal.dev/docs/server/channel_permissions.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

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
from rotary.server.grants import Access
from rotary.server.hooks.channel_ops import ChannelOpsHooks
from rotary.server.hooks.connect import ConnectHooks
from rotary.server.hooks.rpc import RpcHooks
from rotary.server.hooks.subscribe import SubscribeHooks
from rotary.server.proxy.channel import ChannelProxies
from rotary.server.proxy.connection import ConnectProxy, RefreshProxy
from rotary.server.proxy.registry import Proxies
from rotary.server.proxy.rpc import RpcProxies
from rotary.server.proxy.stream import StreamProxies
from rotary.server.tokens import TokenVerifier


class ServerHooks:
    """Implements :class:`rotary.node.hooks.Hooks` from a Centrifugo config and a JWT verifier.

    It only routes: each hook is answered by the part that owns its concern.
    """

    def __init__(self, config: Config, verifier: TokenVerifier, proxies: Proxies | None = None) -> None:
        """``proxies`` are the config's backends (``Proxies(config)``); the caller closes them."""
        self.channels = ChannelRules(config.channel)
        access = Access(config.client, self.channels)
        connect = refresh = channel = rpc = streams = None
        if proxies is not None:
            streams = StreamProxies(proxies.subscribe_stream) if proxies.subscribe_stream else None
            connect = ConnectProxy(proxies.connect, self.channels) if proxies.connect else None
            refresh = RefreshProxy(proxies.refresh) if proxies.refresh else None
            channel = ChannelProxies(proxies.subscribe, proxies.publish, proxies.sub_refresh)
            rpc = RpcProxies(config.rpc, proxies.rpc) if proxies.rpc else None
        self._connect = ConnectHooks(access, verifier, connect, refresh)
        self._subscribe = SubscribeHooks(access, verifier, channel, streams)
        self._channel_ops = ChannelOpsHooks(access, channel)
        self._rpc = RpcHooks(config.rpc, rpc)
        # The two hooks of every connect + subscribe are their owners' own methods, not a
        # coroutine awaiting another (about 1k instructions each).
        self.on_connecting = self._connect.on_connecting
        self.on_subscribe = self._subscribe.on_subscribe

    on_connecting: Callable[[ConnectionInfo, pb.ConnectRequest], Coroutine[Any, Any, ConnectDecision]]
    on_subscribe: Callable[[ClientView, pb.SubscribeRequest], Coroutine[Any, Any, SubscribeOptions]]

    async def on_refresh(self, client: ClientView, request: pb.RefreshRequest) -> RefreshDecision:
        return await self._connect.on_refresh(client, request)

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
