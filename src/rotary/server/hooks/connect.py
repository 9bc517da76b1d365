"""Connect and refresh of the Centrifugo-compatible server: JWT, anonymity, the trusted user header.

Credentials come from the token, else anonymity, else the header; each step answers Centrifugo's
error codes. See https://centrifugal.dev/docs/server/authentication and
https://centrifugal.dev/docs/server/server_subs.
"""

from __future__ import annotations

import logging

from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import (
    ClientView,
    ConnectDecision,
    ConnectionInfo,
    RefreshDecision,
    SubscribeOptions,
)
from rotary.protocol import codes, pb
from rotary.server.channels import ResolvedChannel
from rotary.server.grants import Access, namespace_subscription
from rotary.server.proxy.connection import ConnectProxy, RefreshProxy
from rotary.server.tokens import ConnectToken, TokenError, TokenExpiredError, TokenVerifier

logger = logging.getLogger("rotary.server.hooks")


class ConnectHooks:
    """``on_connecting`` and ``on_refresh`` from the ``client`` section, a JWT verifier and the
    connect and refresh proxies when the config enables them."""

    def __init__(
        self,
        access: Access,
        verifier: TokenVerifier,
        connect_proxy: ConnectProxy | None = None,
        refresh_proxy: RefreshProxy | None = None,
    ) -> None:
        self._access = access
        self._client = access.client
        self._channels = access.channels
        self._verifier = verifier
        self._connect_proxy = connect_proxy
        self._refresh_proxy = refresh_proxy

    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        """Credentials come from the token, else the connect proxy, else anonymity, else the
        trusted user header.

        Only token and anonymous connections get the channels the client asked for in
        ``ConnectRequest.subs``, and only those its permissions would let it subscribe to itself.
        With a refresh proxy every connection is refreshed by the server.
        """
        decision = await self._credentials(conn, request)
        decision.server_side_refresh = self._refresh_proxy is not None
        return decision

    async def _credentials(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        proxied = None
        token = request.token
        if token:
            try:  # awaited here, not in a coroutine of its own: one less per connect
                claims = await self._verifier.verify_connect_token(token)
            except TokenExpiredError:
                raise ClientError(codes.ERROR_TOKEN_EXPIRED) from None
            except TokenError as exc:
                logger.info("invalid connection token: %s", exc)
                raise DisconnectError(codes.DISCONNECT_INVALID_TOKEN) from None
            decision = self._token_decision(claims)
        elif self._connect_proxy is not None and (
            proxied := await self._connect_proxy.connect(conn, request)
        ):
            decision = proxied
        elif self._client.allow_anonymous_connect_without_token or self._client.insecure:
            decision = ConnectDecision(user="")
        else:
            return self._header_connect(conn)
        self.add_personal_channel(decision)
        for channel in () if proxied else request.subs:
            self._add_requested_channel(decision, channel)
        return decision

    def _token_decision(self, claims: ConnectToken) -> ConnectDecision:
        """What a verified connection token grants."""
        if not claims.user and self._client.disallow_anonymous_connection_tokens:
            raise DisconnectError(codes.DISCONNECT_PERMISSION_DENIED)
        expire_at = 0 if self._client.insecure else claims.expire_at
        subscriptions = self._token_subscriptions(claims)
        # positional (user, conn_info, expire_at, data, subscriptions, meta): a class called with
        # keywords gets them as a dict first, on every connect
        return ConnectDecision(claims.user, claims.info, expire_at, b"", subscriptions, claims.meta)

    def _token_subscriptions(self, claims: ConnectToken) -> dict[str, SubscribeOptions]:
        """Server-side subscriptions from ``subs`` (which wins) or ``channels``; 102 for a bad namespace."""
        subscriptions: dict[str, SubscribeOptions] = {}
        for channel, grant in claims.subs.items():
            granted = namespace_subscription(self._channels.resolve(channel).namespace, grant.override)
            granted.chan_info, granted.data = grant.info, grant.data
            subscriptions[channel] = granted
        for channel in () if claims.subs else claims.channels:
            subscriptions[channel] = namespace_subscription(self._channels.resolve(channel).namespace)
        return subscriptions

    def _header_connect(self, conn: ConnectionInfo) -> ConnectDecision:
        """The user a trusted reverse proxy put in a header; such connections get no extra channels."""
        header = self._client.user_id_http_header.lower()
        user = conn.headers.get(header, "") if header else ""
        if not user:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST)
        return ConnectDecision(user=user)

    def add_personal_channel(self, decision: ConnectDecision) -> None:
        personal = self._client.subscribe_to_user_personal_channel
        if not personal.enabled or not decision.user:
            return
        channel = self._channels.personal_channel(decision.user, personal.personal_channel_namespace)
        decision.subscriptions[channel] = namespace_subscription(self._channels.resolve(channel).namespace)
        decision.single_connection = personal.single_connection

    def _add_requested_channel(self, decision: ConnectDecision, channel: str) -> None:
        """A channel named in ConnectRequest.subs: an unknown namespace closes the connection (3501)."""
        try:
            target = self._channels.resolve(channel)
        except ClientError:
            raise DisconnectError(codes.DISCONNECT_BAD_REQUEST) from None
        if channel not in decision.subscriptions and self._may_subscribe_at_connect(target, decision.user):
            decision.subscriptions[channel] = namespace_subscription(target.namespace)

    def _may_subscribe_at_connect(self, target: ResolvedChannel, user: str) -> bool:
        options = target.options
        if target.private or options.subscribe_proxy_enabled or not self._channels.valid_name(target):
            return False
        if target.user_limited and user and self._channels.user_allowed(target.channel, user):
            return True
        return self._access.open_to(target, user) or self._client.insecure

    async def on_refresh(self, client: ClientView, request: pb.RefreshRequest) -> RefreshDecision:
        """A new connection token: an expired one ends the connection (3005), another user's 3500.
        With a refresh proxy (server-side refresh) the backend decides."""
        if self._refresh_proxy is not None:
            return await self._refresh_proxy.refresh(client)
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
