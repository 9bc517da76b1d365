"""The decisions a Node leaves to its owner: who may connect, subscribe, publish, read history.

The Centrifugo-compatible server implements :class:`Hooks` from its config (JWT, namespaces,
proxies) in ``rotary.server.hooks``; an embedding application implements it in Python. Every hook may
raise :class:`~rotary.node.errors.ClientError` (the command fails) or
:class:`~rotary.node.errors.DisconnectError` (the connection closes). Any other exception is logged
and answered with error 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from rotary.engines.base import PublishOptions, StreamPosition
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType


class FeedSink(Protocol):
    """Where a feed delivers: the one subscription it was granted with."""

    def publication(self, data: bytes, tags: Mapping[str, str]) -> None:
        """Pushes a publication (without an offset) to this subscriber only."""
        ...

    def end(self, unsubscribe: codes.UnsubscribeCode) -> None:
        """Ends the subscription with this unsubscribe code."""
        ...


class ChannelFeed(Protocol):
    """Publications a hook streams into one subscription of one connection (Centrifugo's subscribe
    stream proxy). The node attaches it once the subscription is live and closes it when the
    subscription ends, however it ends."""

    @property
    def bidirectional(self) -> bool:
        """The subscriber's publications go into the feed instead of the channel."""
        ...

    def attach(self, sink: FeedSink) -> None: ...

    async def publish(self, data: bytes) -> None:
        """A publication of the subscriber, sent into a bidirectional feed."""
        ...

    def close(self) -> None:
        """Idempotent."""
        ...


class ClientView(Protocol):
    """What hooks may read of a connection."""

    @property
    def id(self) -> str: ...

    @property
    def user(self) -> str: ...

    @property
    def conn_info(self) -> bytes: ...

    @property
    def meta(self) -> bytes: ...

    @property
    def transport_name(self) -> str: ...

    @property
    def protocol(self) -> ProtocolType: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def emulated_headers(self) -> Mapping[str, str]:
        """Headers the client sent inside its connect command (headers emulation)."""
        ...

    @property
    def grpc_metadata(self) -> Mapping[str, str]:
        """Metadata of the GRPC call that opened the connection (uni_grpc), keys lower-cased."""
        ...

    def is_subscribed(self, channel: str) -> bool: ...

    def chan_info(self, channel: str) -> bytes:
        """Channel info of this connection's subscription to ``channel`` (empty if not subscribed)."""
        ...

    def feed(self, channel: str) -> ChannelFeed | None:
        """The feed of this connection's subscription to ``channel``, if it was granted one."""
        ...


@dataclass(slots=True)
class ConnectionInfo:
    """Facts about a connection that has not authenticated yet."""

    client_id: str
    transport_name: str
    protocol: ProtocolType
    headers: Mapping[str, str] = field(default_factory=dict)
    """HTTP headers of the request that opened the connection, keys lower-cased."""
    remote: str = ""
    grpc_metadata: Mapping[str, str] = field(default_factory=dict)
    """Metadata of the GRPC call that opened the connection (uni_grpc), keys lower-cased."""
    request: object | None = None
    """The host framework's request that opened the connection (an aiohttp ``web.Request``, an ASGI scope dict), for hooks that reuse the host application's authentication; None when rotary serves the connection itself."""


@dataclass(slots=True)
class SubscribeOptions:
    """What a granted subscription does. Booleans default to the plainest subscription."""

    chan_info: bytes = b""
    data: bytes = b""
    """Sent to the subscriber in SubscribeResult.data (or the Subscribe push)."""
    expire_at: int = 0
    """Unix seconds when the subscription expires unless refreshed; 0 never."""
    emit_presence: bool = False
    emit_join_leave: bool = False
    push_join_leave: bool = False
    """Deliver join/leave pushes of this channel to this subscriber."""
    recoverable: bool = False
    """Recovery is on: the reply carries epoch/offset and missed publications are returned."""
    positioned: bool = False
    cache_recovery: bool = False
    """Recovery returns only the latest publication (force_recovery_mode "cache")."""
    auto_cache_recover: bool = False
    """In cache mode, deliver the latest publication on every subscribe, even without a client position."""
    delta: str = ""
    """Negotiated delta type ("fossil"), empty for none."""
    history_meta_ttl: float = 0.0
    recover_since: StreamPosition | None = None
    """Server-side subscribe with a position to recover from (API subscribe.recover_since)."""
    allow_tags_filter: bool = False
    """The subscriber may filter publications by tags (SubscribeRequest.tf); otherwise a filter is 107."""
    reject_unrecovered: bool = False
    """Answer 112 instead of ``recovered: false`` (SubscribeRequest.flag bit 2)."""
    server_side_refresh: bool = False
    """At expiry the server asks ``on_sub_refresh`` itself (a sub_refresh proxy); the client is not
    told the TTL and may not send sub_refresh."""
    feed: ChannelFeed | None = None
    """Publications streamed into this subscription only; closed when the subscription ends (or
    when the subscribe fails after the hook returned)."""


@dataclass(slots=True)
class ConnectDecision:
    """Who the connection is and what it gets."""

    user: str
    conn_info: bytes = b""
    expire_at: int = 0
    """Unix seconds when the connection expires unless refreshed; 0 never."""
    data: bytes = b""
    """Sent to the client in ConnectResult.data."""
    subscriptions: dict[str, SubscribeOptions] = field(default_factory=dict)
    """Server-side subscriptions made at connect."""
    meta: bytes = b""
    single_connection: bool = False
    """Close the user's other connections (3504) once this one is connected."""
    server_side_refresh: bool = False
    """At expiry the server asks ``on_refresh`` itself (a refresh proxy); the client is not told
    the TTL and may not send refresh."""


@dataclass(slots=True)
class RefreshDecision:
    expire_at: int = 0
    expired: bool = False
    conn_info: bytes | None = None
    """New connection info, or None to keep the current one."""
    meta: bytes | None = None
    """New connection meta, or None to keep the current one."""


@dataclass(slots=True)
class SubRefreshDecision:
    expire_at: int = 0
    expired: bool = False
    chan_info: bytes | None = None


@dataclass(slots=True)
class PublishDecision:
    """The data to publish (a proxy may rewrite it) and how to keep it."""

    data: bytes
    options: PublishOptions
    forwarded: bool = False
    """The hook delivered the publication itself (into a feed): nothing is published."""


class Hooks(Protocol):
    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        """Authenticate. A token error is DisconnectError(3500); an expired token ClientError(109)."""
        ...

    async def on_refresh(self, client: ClientView, request: pb.RefreshRequest) -> RefreshDecision:
        """A client's refresh command, or (empty request) the server's own at expiry when the
        connection was granted with ``server_side_refresh``."""
        ...

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions: ...

    async def on_sub_refresh(
        self, client: ClientView, request: pb.SubRefreshRequest
    ) -> SubRefreshDecision: ...

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision: ...

    async def on_presence(self, client: ClientView, channel: str) -> None:
        """Permission for presence and presence_stats; raise 108 when presence is off, 103 when denied."""
        ...

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        """Permission for history; returns the channel's history meta TTL in seconds (0 = default)."""
        ...

    async def on_rpc(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        """Result data of an RPC; raise ClientError(104) for an unknown method."""
        ...
