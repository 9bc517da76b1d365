"""Runs an application's Python hooks as the node's internal Hooks (rotary.node.hooks).

This is where protobuf requests become events and replies become the node's decisions, so that
neither side knows the other's types. Defaults for missing hooks are described in ``hookset``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import TypedDict

from rotary.embed.data import decode, encode
from rotary.embed.events import (
    ChannelOptions,
    ConnectingEvent,
    ConnectReply,
    HistoryEvent,
    PresenceEvent,
    Protocol,
    PublishEvent,
    RefreshEvent,
    RPCEvent,
    SubRefreshEvent,
    SubscribeEvent,
    SubscribeReply,
)
from rotary.embed.hookset import HookSet
from rotary.engines.base import PublishOptions, StreamPosition
from rotary.node.errors import ClientError, DisconnectError
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
from rotary.protocol.codec import ProtocolType

REJECT_UNRECOVERED_FLAG = 2
"""SubscribeRequest.flag bit asking for error 112 instead of ``recovered: false``."""

ChannelOptionsFor = Callable[[str], ChannelOptions]


def _protocol(protocol: ProtocolType) -> Protocol:
    return "protobuf" if protocol is ProtocolType.PROTOBUF else "json"


def merged_headers(real: Mapping[str, str], emulated: Mapping[str, str]) -> dict[str, str]:
    """Real HTTP headers, then those a browser client sent in its connect command."""
    headers = {key.lower(): value for key, value in emulated.items()}
    headers.update(real)
    return headers


def _cookies(headers: Mapping[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


class ClientFields(TypedDict):
    """The fields every ClientEvent has."""

    client_id: str
    user: str
    transport: str
    protocol: Protocol
    headers: Mapping[str, str]
    info: bytes


def client_fields(client: ClientView) -> ClientFields:
    """The fields every ClientEvent has, read from a connected client."""
    return {
        "client_id": client.id,
        "user": client.user,
        "transport": client.transport_name,
        "protocol": _protocol(client.protocol),
        "headers": merged_headers(client.headers, client.emulated_headers),
        "info": client.conn_info,
    }


class PythonHooks:
    """rotary.node.hooks.Hooks on top of a HookSet and the channels' options."""

    def __init__(self, hooks: HookSet, options: ChannelOptionsFor, insecure: bool) -> None:
        self.hooks = hooks
        self.options = options
        self.insecure = insecure

    def subscription(
        self, channel: str, reply: SubscribeReply, request: pb.SubscribeRequest | None
    ) -> SubscribeOptions:
        """A granted subscription: the reply's info and expiry, the channel's options, and what the
        client asked for that the channel allows (recovery and positioning need history)."""
        channel_options = self.options(channel)
        granted = SubscribeOptions(
            chan_info=encode(reply.info),
            data=encode(reply.data),
            expire_at=reply.expire_at,
            emit_presence=channel_options.presence,
            emit_join_leave=channel_options.join_leave,
            push_join_leave=channel_options.force_push_join_leave,
            recoverable=channel_options.force_recovery,
            positioned=channel_options.force_positioning,
            history_meta_ttl=channel_options.history_meta_ttl,
            server_side_refresh=not reply.client_side_refresh,
        )
        if request is None:
            return granted
        if request.HasField("tf"):  # tags filters are not offered to library subscriptions
            raise ClientError(codes.ERROR_BAD_REQUEST)
        history = channel_options.history
        granted.recoverable = granted.recoverable or (request.recoverable and history)
        granted.positioned = granted.positioned or (request.positioned and history)
        granted.push_join_leave = granted.push_join_leave or (
            request.join_leave and channel_options.join_leave
        )
        granted.reject_unrecovered = bool(request.flag & REJECT_UNRECOVERED_FLAG)
        return granted

    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        hook = self.hooks.connecting
        if hook is None:
            if not self.insecure:
                raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
            reply = ConnectReply(user="")
        else:
            headers = merged_headers(conn.headers, request.headers)
            reply = await hook(
                ConnectingEvent(
                    client_id=conn.client_id,
                    transport=conn.transport_name,
                    protocol=_protocol(conn.protocol),
                    headers=headers,
                    cookies=_cookies(headers),
                    remote=conn.remote,
                    token=request.token,
                    data=decode(request.data, conn.protocol),
                    name=request.name,
                    version=request.version,
                    channels=tuple(request.subs),
                    request=conn.request,
                )
            )
        channels = reply.channels
        if isinstance(channels, Mapping):
            replies = dict(channels)
        else:
            replies = {channel: SubscribeReply() for channel in channels}
        return ConnectDecision(
            user=reply.user,
            conn_info=encode(reply.info),
            expire_at=reply.expire_at,
            data=encode(reply.data),
            subscriptions={
                channel: self.subscription(channel, sub, None) for channel, sub in replies.items()
            },
            server_side_refresh=not reply.client_side_refresh,
        )

    async def on_refresh(self, client: ClientView, request: pb.RefreshRequest) -> RefreshDecision:
        hook = self.hooks.refresh
        if hook is None:
            return RefreshDecision(expired=True)
        reply = await hook(
            RefreshEvent(**client_fields(client), client_side=bool(request.token), token=request.token)
        )
        info = None if reply.info is None else encode(reply.info)
        return RefreshDecision(expire_at=reply.expire_at, expired=reply.expired, conn_info=info)

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        hook = self.hooks.subscribe
        if hook is None:
            if not self.insecure:
                raise ClientError(codes.ERROR_PERMISSION_DENIED)
            reply = None
        else:
            event = SubscribeEvent(
                **client_fields(client),
                channel=request.channel,
                token=request.token,
                data=decode(request.data, client.protocol),
            )
            reply = await hook(event)
        return self.subscription(request.channel, reply or SubscribeReply(), request)

    async def on_sub_refresh(self, client: ClientView, request: pb.SubRefreshRequest) -> SubRefreshDecision:
        hook = self.hooks.sub_refresh
        if hook is None:
            return SubRefreshDecision(expired=True)
        event = SubRefreshEvent(
            **client_fields(client),
            channel=request.channel,
            client_side=bool(request.token),
            token=request.token,
        )
        reply = await hook(event)
        info = None if reply.info is None else encode(reply.info)
        return SubRefreshDecision(expire_at=reply.expire_at, expired=reply.expired, chan_info=info)

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision:
        hook = self.hooks.publish
        reply = None
        if hook is None:
            if not self.insecure:
                raise ClientError(codes.ERROR_PERMISSION_DENIED)
        else:
            event = PublishEvent(
                **client_fields(client),
                channel=request.channel,
                data=decode(request.data, client.protocol),
            )
            reply = await hook(event)
        data = request.data if reply is None or reply.data is None else encode(reply.data)
        channel_options = self.options(request.channel)
        info = pb.ClientInfo(
            user=client.user,
            client=client.id,
            conn_info=client.conn_info,
            chan_info=client.chan_info(request.channel),
        )
        options = PublishOptions(
            history_size=channel_options.history_size,
            history_ttl=channel_options.history_ttl,
            history_meta_ttl=channel_options.history_meta_ttl,
            client_info=info,
            tags=dict(reply.tags) if reply is not None else {},
        )
        return PublishDecision(data, options)

    async def on_presence(self, client: ClientView, channel: str) -> None:
        if not self.options(channel).presence:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        hook = self.hooks.presence
        if hook is not None:
            await hook(PresenceEvent(**client_fields(client), channel=channel))
        elif not (self.insecure or client.is_subscribed(channel)):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        channel = request.channel
        channel_options = self.options(channel)
        if not channel_options.history:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        hook = self.hooks.history
        if hook is not None:
            since = (
                StreamPosition(request.since.offset, request.since.epoch)
                if request.HasField("since")
                else None
            )
            event = HistoryEvent(
                **client_fields(client),
                channel=channel,
                limit=request.limit,
                since=since,
                reverse=request.reverse,
            )
            await hook(event)
        elif not (self.insecure or client.is_subscribed(channel)):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        return channel_options.history_meta_ttl

    async def on_rpc(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        hook = self.hooks.rpc
        if hook is None:
            raise ClientError(codes.ERROR_METHOD_NOT_FOUND)
        event = RPCEvent(
            **client_fields(client),
            method=request.method,
            data=decode(request.data, client.protocol),
        )
        return encode(await hook(event))
