"""The Node hooks of the Centrifugo-compatible server: JWTs, namespace permissions, built-in RPC.

Each hook applies Centrifugo's decision order, so a client sees the same error code for the same
mistake. See https://centrifugal.dev/docs/server/authentication,
https://centrifugal.dev/docs/server/channel_token_auth,
https://centrifugal.dev/docs/server/channel_permissions and
https://centrifugal.dev/docs/server/server_subs.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final

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
from rotary.server.channels import ChannelRules, Namespace, ResolvedChannel, valid_tags_filter
from rotary.server.config.schema import Config
from rotary.server.tokens import (
    ConnectToken,
    Override,
    SubscriptionToken,
    TokenError,
    TokenExpiredError,
    TokenVerifier,
)

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

OVERRIDES: Final[tuple[tuple[str, str], ...]] = (
    ("presence", "emit_presence"),
    ("join_leave", "emit_join_leave"),
    ("force_push_join_leave", "push_join_leave"),
    ("force_recovery", "recoverable"),
    ("force_positioning", "positioned"),
)
"""Token ``override`` field -> the SubscribeOptions field it replaces."""


def namespace_subscription(namespace: Namespace, override: Override | None = None) -> SubscribeOptions:
    """What a subscription gets from its namespace alone, before the client asks for anything."""
    options = namespace.options
    granted = SubscribeOptions(
        emit_presence=options.presence,
        emit_join_leave=options.join_leave,
        push_join_leave=options.force_push_join_leave,
        recoverable=options.force_recovery,
        positioned=options.force_positioning,
        cache_recovery=options.force_recovery_mode == "cache",
        auto_cache_recover=options.auto_cache_recover,
        history_meta_ttl=namespace.history_meta_ttl,
    )
    for source, target in OVERRIDES if override is not None else ():
        value = getattr(override, source)
        if value is not None:
            setattr(granted, target, value)
    return granted


def _is_anonymous(client: ClientView) -> bool:
    return client.user == ""


class ServerHooks:
    """Implements :class:`rotary.node.hooks.Hooks` from a Centrifugo config and a JWT verifier.

    Proxies (connect, subscribe, publish, RPC...) are not consulted yet: a namespace that enables
    one answers 108 "not available", as Centrifugo does when the named proxy is missing.
    """

    def __init__(self, config: Config, verifier: TokenVerifier) -> None:
        self._client = config.client
        self._rpc = config.rpc
        self._verifier = verifier
        self.channels = ChannelRules(config.channel)

    # Connection

    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        """Credentials come from the token, else anonymity, else the trusted user header.

        Only token and anonymous connections get the channels the client asked for in
        ``ConnectRequest.subs``, and only those its permissions would let it subscribe to itself.
        """
        if request.token:
            decision = await self._token_connect(request.token)
        elif self._client.allow_anonymous_connect_without_token or self._client.insecure:
            decision = ConnectDecision(user="")
        else:
            return self._header_connect(conn)
        self._add_personal_channel(decision)
        for channel in request.subs:
            self._add_requested_channel(decision, channel)
        return decision

    async def _token_connect(self, token: str) -> ConnectDecision:
        try:
            claims = await self._verifier.verify_connect_token(token)
        except TokenExpiredError:
            raise ClientError(codes.ERROR_TOKEN_EXPIRED) from None
        except TokenError as exc:
            logger.info("invalid connection token: %s", exc)
            raise DisconnectError(codes.DISCONNECT_INVALID_TOKEN) from None
        if not claims.user and self._client.disallow_anonymous_connection_tokens:
            raise DisconnectError(codes.DISCONNECT_PERMISSION_DENIED)
        return ConnectDecision(
            user=claims.user,
            conn_info=claims.info,
            expire_at=0 if self._client.insecure else claims.expire_at,
            subscriptions=self._token_subscriptions(claims),
            meta=claims.meta,
        )

    def _token_subscriptions(self, claims: ConnectToken) -> dict[str, SubscribeOptions]:
        """Server-side subscriptions from ``subs`` (which wins) or ``channels``; 102 for a bad namespace."""
        subscriptions: dict[str, SubscribeOptions] = {}
        for channel, grant in claims.subs.items():
            granted = namespace_subscription(self.channels.resolve(channel).namespace, grant.override)
            granted.chan_info, granted.data = grant.info, grant.data
            subscriptions[channel] = granted
        for channel in () if claims.subs else claims.channels:
            subscriptions[channel] = namespace_subscription(self.channels.resolve(channel).namespace)
        return subscriptions

    def _header_connect(self, conn: ConnectionInfo) -> ConnectDecision:
        """The user a trusted reverse proxy put in a header; such connections get no extra channels."""
        header = self._client.user_id_http_header.lower()
        user = conn.headers.get(header, "") if header else ""
        if not user:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
        return ConnectDecision(user=user)

    def _add_personal_channel(self, decision: ConnectDecision) -> None:
        personal = self._client.subscribe_to_user_personal_channel
        if not personal.enabled or not decision.user:
            return
        channel = self.channels.personal_channel(decision.user, personal.personal_channel_namespace)
        decision.subscriptions[channel] = namespace_subscription(self.channels.resolve(channel).namespace)
        decision.single_connection = personal.single_connection

    def _add_requested_channel(self, decision: ConnectDecision, channel: str) -> None:
        """A channel named in ConnectRequest.subs: an unknown namespace closes the connection (3501)."""
        try:
            target = self.channels.resolve(channel)
        except ClientError:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST) from None
        if channel not in decision.subscriptions and self._may_subscribe_at_connect(target, decision.user):
            decision.subscriptions[channel] = namespace_subscription(target.namespace)

    def _may_subscribe_at_connect(self, target: ResolvedChannel, user: str) -> bool:
        options = target.options
        if target.private or options.subscribe_proxy_enabled or not self.channels.valid_name(target):
            return False
        if target.user_limited and user and self.channels.user_allowed(target.channel, user):
            return True
        return self._open_to(target, user) or self._client.insecure

    async def on_refresh(self, client: ClientView, request: pb.RefreshRequest) -> RefreshDecision:
        """A new connection token: an expired one ends the connection (3005), another user's 3500."""
        if not request.token:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
        try:
            claims = await self._verifier.verify_connect_token(request.token)
        except TokenExpiredError:
            return RefreshDecision(expired=True)
        except TokenError as exc:
            logger.info("invalid refresh token: %s", exc)
            raise DisconnectError(codes.DISCONNECT_INVALID_TOKEN) from None
        if claims.user != client.user:
            raise DisconnectError(codes.DISCONNECT_INVALID_TOKEN)
        return RefreshDecision(expire_at=claims.expire_at, conn_info=claims.info or None)

    # Subscriptions

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        target = self._subscribe_target(request)
        granted = await self._authorize_subscribe(client, target, request.token)
        self._apply_request(client, target, request, granted)
        return granted

    def _subscribe_target(self, request: pb.SubscribeRequest) -> ResolvedChannel:
        """Checks that come before any permission: delta type, name, namespace, subscription type."""
        if request.delta and request.delta not in DELTA_TYPES:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
        channel = self._require_channel(request.channel)
        self.channels.check_length(channel)
        target = self.channels.resolve(channel)
        self.channels.check_name(target)
        wanted = SUBSCRIPTION_TYPES.get(request.type)
        if wanted != (target.options.subscription_type or "stream"):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        return target

    async def _authorize_subscribe(
        self, client: ClientView, target: ResolvedChannel, token: str
    ) -> SubscribeOptions:
        """Token, then user list, then proxies, then namespace permission, then insecure mode."""
        options = target.options
        if target.private and not token:
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        if token:
            return await self._token_subscription(client, target, token)
        if target.user_limited and self.channels.user_allowed(target.channel, client.user):
            return namespace_subscription(target.namespace)
        if not target.user_limited and (
            options.subscribe_proxy_enabled or options.subscribe_stream_proxy_enabled
        ):
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if self._open_to(target, client.user) or self._client.insecure:
            return namespace_subscription(target.namespace)
        raise ClientError(codes.ERROR_PERMISSION_DENIED)

    @staticmethod
    def _open_to(target: ResolvedChannel, user: str) -> bool:
        """allow_subscribe_for_client (plus _for_anonymous for anonymous users); a user list overrules it."""
        options = target.options
        anonymous_ok = user != "" or options.allow_subscribe_for_anonymous
        return options.allow_subscribe_for_client and anonymous_ok and not target.user_limited

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
        self.channels.resolve(claims.channel)
        foreign_client = claims.client != "" and claims.client != client.id
        if claims.channel != channel or claims.user != client.user or foreign_client:
            raise DisconnectError(codes.DISCONNECT_INVALID_TOKEN)

    def _apply_request(
        self,
        client: ClientView,
        target: ResolvedChannel,
        request: pb.SubscribeRequest,
        granted: SubscribeOptions,
    ) -> None:
        """What the client asked for, where its permissions allow it (history access stands in for
        allow_recovery/allow_positioning, presence access for join/leave pushes)."""
        options = target.options
        history = self._history_access(client, target, subscribed=True)
        if request.positioned and (options.allow_positioning or history):
            granted.positioned = True
        if request.recoverable and (options.allow_recovery or history):
            granted.recoverable = True
        if (
            request.join_leave
            and options.join_leave
            and self._presence_access(client, target, subscribed=True)
        ):
            granted.push_join_leave = True
        if request.HasField("tf") and not (options.allow_tags_filter and valid_tags_filter(request.tf)):
            raise ClientError(codes.ERROR_BAD_REQUEST)
        granted.allow_tags_filter = options.allow_tags_filter
        if request.delta in options.allowed_delta_types:
            granted.delta = request.delta
        granted.reject_unrecovered = bool(request.flag & REJECT_UNRECOVERED_FLAG)

    async def on_sub_refresh(self, client: ClientView, request: pb.SubRefreshRequest) -> SubRefreshDecision:
        """A new subscription token; an expired one leaves the decision to the caller (``expired``)."""
        channel = self._require_channel(request.channel)
        if not client.is_subscribed(channel):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
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

    # Channel operations

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision:
        target = self._checked_target(request.channel)
        self.channels.check_data(target, request.data)
        options = target.options
        if options.publish_proxy_enabled or options.subscribe_stream_proxy_enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        allowed = self._permitted(
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

    async def on_presence(self, client: ClientView, channel: str) -> None:
        target = self._checked_target(channel)
        if not target.options.presence:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if not self._presence_access(client, target, subscribed=client.is_subscribed(target.channel)):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)

    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        target = self._checked_target(request.channel)
        if not target.namespace.history_enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if not self._history_access(client, target, subscribed=client.is_subscribed(target.channel)):
            raise ClientError(codes.ERROR_PERMISSION_DENIED)
        return target.namespace.history_meta_ttl

    async def on_rpc(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        """The built-in ping answers an empty result; with no RPC handler at all RPC is 108."""
        ping = self._rpc.ping
        if not ping.enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if request.method != ping.method:
            raise ClientError(codes.ERROR_METHOD_NOT_FOUND)
        return b""

    # Shared checks

    @staticmethod
    def _require_channel(channel: str) -> str:
        if not channel:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
        return channel

    def _checked_target(self, channel: str) -> ResolvedChannel:
        """Name present (else 3501), namespace known (else 102), name valid (else 107)."""
        target = self.channels.resolve(self._require_channel(channel))
        self.channels.check_name(target)
        return target

    def _permitted(
        self, client: ClientView, *, for_client: bool, for_subscriber: bool, for_anonymous: bool
    ) -> bool:
        """Centrifugo's three-way rule: any client, or subscribers; anonymous ones only when allowed."""
        identified = not _is_anonymous(client) or for_anonymous
        return ((for_client or for_subscriber) and identified) or self._client.insecure

    def _presence_access(self, client: ClientView, target: ResolvedChannel, *, subscribed: bool) -> bool:
        options = target.options
        return self._permitted(
            client,
            for_client=options.allow_presence_for_client,
            for_subscriber=options.allow_presence_for_subscriber and subscribed,
            for_anonymous=options.allow_presence_for_anonymous,
        )

    def _history_access(self, client: ClientView, target: ResolvedChannel, *, subscribed: bool) -> bool:
        options = target.options
        return self._permitted(
            client,
            for_client=options.allow_history_for_client,
            for_subscriber=options.allow_history_for_subscriber and subscribed,
            for_anonymous=options.allow_history_for_anonymous,
        )
