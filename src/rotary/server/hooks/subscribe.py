"""Subscribe and subscription refresh: subscription tokens, user lists, namespace permissions.

Each step applies Centrifugo's decision order, so a client sees the same error code for the same
mistake. See https://centrifugal.dev/docs/server/channel_token_auth and
https://centrifugal.dev/docs/server/channel_permissions.
"""

from __future__ import annotations

import logging
from typing import Final

from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import ClientView, SubRefreshDecision, SubscribeOptions
from rotary.protocol import codes, pb
from rotary.server.channels import ResolvedChannel, valid_tags_filter
from rotary.server.grants import Access, namespace_subscription, require_channel
from rotary.server.proxy.channel import ChannelProxies
from rotary.server.proxy.stream import StreamProxies
from rotary.server.tokens import SubscriptionToken, TokenError, TokenExpiredError, TokenVerifier

logger = logging.getLogger("rotary.server.hooks")

SUBSCRIPTION_TYPES: Final[dict[int, str]] = {
    0: "stream",
    1: "map",
    2: "map_clients",
    3: "map_users",
    4: "shared_poll",
}
"""SubscribeRequest.type -> the namespace ``subscription_type`` that accepts it ("" accepts stream)."""

DELTA_TYPES: Final = frozenset({"fossil"})
"""Delta types the protocol knows; asking for another one is a bad request (3501)."""

REJECT_UNRECOVERED_FLAG: Final = 2
"""SubscribeRequest.flag bit: answer 112 instead of subscribing with ``recovered: false``."""


class SubscribeHooks:
    """``on_subscribe`` and ``on_sub_refresh`` from the channel rules, a JWT verifier and the
    namespaces' subscribe and sub_refresh proxies."""

    def __init__(
        self,
        access: Access,
        verifier: TokenVerifier,
        proxies: ChannelProxies | None = None,
        streams: StreamProxies | None = None,
    ) -> None:
        self._access = access
        self._channels = access.channels
        self._verifier = verifier
        self._proxies = proxies
        self._streams = streams

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        """A namespace with a sub_refresh proxy has every subscription refreshed by the server."""
        target = self.subscribe_target(request)
        token = request.token
        if self._proxied(client, target, token):
            granted = await self._require(self._proxies).subscribe(client, target, request)
            self._negotiate(target, request, granted)
        elif self._streamed(target, token):
            if request.HasField("tf"):  # a stream subscription filters nothing
                raise ClientError(codes.ERROR_BAD_REQUEST)
            if self._streams is None:
                raise ClientError(codes.ERROR_NOT_AVAILABLE)
            granted = await self._streams.subscribe(client, target, request)
        else:
            if token:  # the only way _authorize waits: no coroutine for the others
                granted = await self._token_subscription(client, target, token)
            else:
                granted = self._authorize(client, target)
            self.apply_request(client, target, request, granted)
        granted.server_side_refresh = target.options.sub_refresh_proxy_enabled
        return granted

    def _proxied(self, client: ClientView, target: ResolvedChannel, token: str) -> bool:
        """The subscribe proxy decides after a token and an allowing user list, on channels without one."""
        if token or target.user_limited or not target.options.subscribe_proxy_enabled:
            return False
        return not target.private

    @staticmethod
    def _streamed(target: ResolvedChannel, token: str) -> bool:
        """The subscribe stream proxy comes where the subscribe proxy would (they exclude each other)."""
        if token or target.user_limited or target.private:
            return False
        return target.options.subscribe_stream_proxy_enabled

    @staticmethod
    def _require(proxies: ChannelProxies | None) -> ChannelProxies:
        if proxies is None:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        return proxies

    def subscribe_target(self, request: pb.SubscribeRequest) -> ResolvedChannel:
        """Checks that come before any permission: delta type, name, namespace, subscription type."""
        if request.delta and request.delta not in DELTA_TYPES:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
        channel = require_channel(request.channel)
        self._channels.check_length(channel)
        target = self._channels.resolve(channel)
        self._channels.check_name(target)
        wanted = SUBSCRIPTION_TYPES.get(request.type)
        if wanted != (target.options.subscription_type or "stream"):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        return target

    def _authorize(self, client: ClientView, target: ResolvedChannel) -> SubscribeOptions:
        """Without a token (which ``_token_subscription`` checks first): user list, then proxies,
        then namespace permission, then insecure mode."""
        options = target.options
        if target.private:
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        if target.user_limited and self._channels.user_allowed(target.channel, client.user):
            return namespace_subscription(target.namespace)
        if not target.user_limited and (
            options.subscribe_proxy_enabled or options.subscribe_stream_proxy_enabled
        ):
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if self._access.open_to(target, client.user) or self._access.client.insecure:
            return namespace_subscription(target.namespace)
        raise ClientError(codes.ERROR_PERMISSION_DENIED)

    async def _token_subscription(
        self, client: ClientView, target: ResolvedChannel, token: str
    ) -> SubscribeOptions:
        """Expired token 109, invalid 103, unknown namespace in it 102, someone else's 3500."""
        try:
            claims = await self._verifier.verify_subscription_token(token)
        except TokenExpiredError:
            raise ClientError(codes.ERROR_TOKEN_EXPIRED) from None
        except TokenError as exc:
            logger.info("invalid subscription token: %s", exc)
            raise ClientError(codes.ERROR_PERMISSION_DENIED) from None
        self._check_token_owner(client, target.channel, claims)
        granted = namespace_subscription(target.namespace, claims.override)
        granted.chan_info, granted.data, granted.expire_at = claims.info, claims.data, claims.expire_at
        return granted

    def _check_token_owner(self, client: ClientView, channel: str, claims: SubscriptionToken) -> None:
        """A token for another channel, user or client closes the connection (3500).

        The token's own namespace is resolved first, so a token for an unknown one is 102.
        """
        self._channels.resolve(claims.channel)
        foreign_client = claims.client != "" and claims.client != client.id
        if claims.channel != channel or claims.user != client.user or foreign_client:
            raise DisconnectError(codes.DISCONNECT_INVALID_TOKEN)

    def apply_request(
        self,
        client: ClientView,
        target: ResolvedChannel,
        request: pb.SubscribeRequest,
        granted: SubscribeOptions,
    ) -> None:
        """What the client asked for, where its permissions allow it (history access stands in for
        allow_recovery/allow_positioning, presence access for join/leave pushes)."""
        options = target.options
        positioned, recoverable = request.positioned, request.recoverable
        if positioned or recoverable:  # history access matters only then
            history = self._access.history(client, target, subscribed=True)
            if positioned and (options.allow_positioning or history):
                granted.positioned = True
            if recoverable and (options.allow_recovery or history):
                granted.recoverable = True
        if (
            request.join_leave
            and options.join_leave
            and self._access.presence(client, target, subscribed=True)
        ):
            granted.push_join_leave = True
        self._negotiate(target, request, granted)

    @staticmethod
    def _negotiate(target: ResolvedChannel, request: pb.SubscribeRequest, granted: SubscribeOptions) -> None:
        """What every granted subscription negotiates, proxied or not: tags filter, delta, flags."""
        options = target.options
        if request.HasField("tf") and not (options.allow_tags_filter and valid_tags_filter(request.tf)):
            raise ClientError(codes.ERROR_BAD_REQUEST)
        granted.allow_tags_filter = options.allow_tags_filter
        if request.delta in options.allowed_delta_types:
            granted.delta = request.delta
        granted.reject_unrecovered = bool(request.flag & REJECT_UNRECOVERED_FLAG)

    async def on_sub_refresh(self, client: ClientView, request: pb.SubRefreshRequest) -> SubRefreshDecision:
        """A new subscription token; an expired one leaves the decision to the caller (``expired``).
        Without a token (the server's own refresh at expiry) the sub_refresh proxy decides."""
        channel = require_channel(request.channel)
        if not client.is_subscribed(channel):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        if not request.token and self._proxies is not None:
            return await self._proxies.sub_refresh(client, self._channels.resolve(channel))
        if not request.token:
            raise ClientError(codes.ERROR_BAD_REQUEST)
        try:
            claims = await self._verifier.verify_subscription_token(request.token)
        except TokenExpiredError:
            return SubRefreshDecision(expired=True)
        except TokenError as exc:
            logger.info("invalid subscription refresh token: %s", exc)
            raise DisconnectError(codes.DISCONNECT_INVALID_TOKEN) from None
        self._check_token_owner(client, channel, claims)
        return SubRefreshDecision(expire_at=claims.expire_at, chan_info=claims.info or None)
