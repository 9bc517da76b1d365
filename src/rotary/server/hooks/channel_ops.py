"""Publish, presence and history permissions of the Centrifugo-compatible server.

See https://centrifugal.dev/docs/server/channel_permissions.
"""

from __future__ import annotations

from dataclasses import replace

from rotary.engines.base import PublishOptions
from rotary.node.errors import ClientError
from rotary.node.hooks import ClientView, PublishDecision
from rotary.protocol import codes, pb
from rotary.server.grants import Access
from rotary.server.proxy.channel import ChannelProxies


class ChannelOpsHooks:
    """``on_publish``, ``on_presence`` and ``on_history`` from the namespace permissions, and
    the namespaces' publish proxies."""

    def __init__(self, access: Access, proxies: ChannelProxies | None = None) -> None:
        self._access = access
        self._channels = access.channels
        self._proxies = proxies

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision:
        target = self._access.checked_target(request.channel)
        self._channels.check_data(target, request.data)
        options = target.options
        if options.publish_proxy_enabled and self._proxies is not None:
            return await self._proxies.publish(client, target, request)
        if options.publish_proxy_enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if options.subscribe_stream_proxy_enabled:
            bidirectional = options.subscribe_stream_proxy_bidirectional
            return await self._into_stream(client, target.channel, request, bidirectional)
        allowed = self._access.permitted(
            client,
            for_client=options.allow_publish_for_client,
            for_subscriber=options.allow_publish_for_subscriber and client.is_subscribed(target.channel),
            for_anonymous=options.allow_publish_for_anonymous,
        )
        if not allowed:
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        info = pb.ClientInfo(
            user=client.user,
            client=client.id,
            conn_info=client.conn_info,
            chan_info=client.chan_info(target.channel),
        )
        return PublishDecision(data=request.data, options=replace(target.publish_options(), client_info=info))

    @staticmethod
    async def _into_stream(
        client: ClientView, channel: str, request: pb.PublishRequest, bidirectional: bool
    ) -> PublishDecision:
        """On a stream proxy channel a publication goes into the subscriber's bidirectional stream."""
        feed = client.feed(channel) if bidirectional else None
        if feed is None:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        await feed.publish(request.data)
        return PublishDecision(data=request.data, options=PublishOptions(), forwarded=True)

    async def on_presence(self, client: ClientView, channel: str) -> None:
        target = self._access.checked_target(channel)
        if not target.options.presence:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if not self._access.presence(client, target, subscribed=client.is_subscribed(target.channel)):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        target = self._access.checked_target(request.channel)
        if not target.namespace.history_enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if not self._access.history(client, target, subscribed=client.is_subscribed(target.channel)):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        return target.namespace.history_meta_ttl
