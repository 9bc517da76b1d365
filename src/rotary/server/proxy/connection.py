"""Connect and refresh proxies: the backend authenticates connections and extends them.

A connect proxy answers a connect without a token (a token still goes to the JWT check); a
refresh proxy makes refresh server-side: at expiry rotary asks the backend, not the client, and a
backend that cannot answer gives the connection one more minute. See
https://centrifugal.dev/docs/server/proxy#connect-proxy and https://centrifugal.dev/docs/server/proxy#refresh-proxy
"""

from __future__ import annotations

import logging
import time
from typing import Final

from rotary.node.errors import ClientError
from rotary.node.hooks import ClientView, ConnectDecision, ConnectionInfo, RefreshDecision, SubscribeOptions
from rotary.protocol import codes, pb
from rotary.server.channels import ChannelRules, ResolvedChannel
from rotary.server.grants import namespace_subscription
from rotary.server.proxy import messages
from rotary.server.proxy.backends import Backend
from rotary.server.proxy.headers import CallContext
from rotary.server.proxy.outcome import ask, encoding, payload, raise_refusal
from rotary.server.proxy.requests import client_request, context_of, with_payload
from rotary.server.tokens import Override

logger = logging.getLogger("rotary.server.proxy")

RETRY_AFTER_FAILURE: Final = 60
"""Seconds of life a connection or subscription gets when the refresh backend cannot answer."""


class ConnectProxy:
    def __init__(self, backend: Backend, channels: ChannelRules) -> None:
        self._backend = backend
        self._binary = backend.config.binary_encoding
        self._channels = channels

    async def connect(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision | None:
        """The backend's decision; None when it sent no result (the connection is not authenticated)."""
        proxied = messages.ConnectRequest(
            client=conn.client_id,
            transport=conn.transport_name,
            protocol=conn.protocol.value,
            encoding=encoding(self._binary),
            name=request.name,
            version=request.version,
            channels=list(request.subs),
        )
        with_payload(proxied, self._binary, request.data)
        context = CallContext(conn.headers, dict(request.headers), conn.grpc_metadata)
        response = await ask(self._backend, "Connect", proxied, messages.ConnectResponse, context)
        raise_refusal(response)
        if not response.HasField("result"):
            return None
        result = response.result
        decision = ConnectDecision(
            user=result.user,
            conn_info=payload(result.info, result.b64info),
            expire_at=result.expire_at,
            data=payload(result.data, result.b64data),
            meta=result.meta,
        )
        for channel in result.channels:
            decision.subscriptions[channel] = namespace_subscription(self._known(channel).namespace)
        for channel, options in result.subs.items():
            decision.subscriptions[channel] = self._granted(channel, options)
        return decision

    def _known(self, channel: str) -> ResolvedChannel:
        """A channel of the result in an unknown namespace fails the connect with 102."""
        try:
            return self._channels.resolve(channel)
        except ClientError:
            logger.warning("unknown channel %r in connect proxy result", channel)
            raise ClientError(codes.ERROR_UNKNOWN_CHANNEL) from None

    def _granted(self, channel: str, options: messages.SubscribeOptions) -> SubscribeOptions:
        granted = namespace_subscription(self._known(channel).namespace, override_of(options.override))
        granted.chan_info = payload(options.info, options.b64info)
        granted.data = payload(options.data, options.b64data)
        granted.auto_cache_recover = options.cache_recover
        return granted


def override_of(override: messages.SubscribeOptionOverride) -> Override:
    """The proxy's override, field by field; an absent field keeps the namespace's option."""

    def value(name: str) -> bool | None:
        return getattr(override, name).value if override.HasField(name) else None

    return Override(
        presence=value("presence"),
        join_leave=value("join_leave"),
        force_push_join_leave=value("force_push_join_leave"),
        force_recovery=value("force_recovery"),
        force_positioning=value("force_positioning"),
    )


class RefreshProxy:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def refresh(self, client: ClientView) -> RefreshDecision:
        """Errors and refusals of the backend do not end the connection: it lives one more minute."""
        request = client_request(messages.RefreshRequest, self._backend, client)
        try:
            response = await ask(
                self._backend, "Refresh", request, messages.RefreshResponse, context_of(client)
            )
        except ClientError:
            return RefreshDecision(expire_at=int(time.time()) + RETRY_AFTER_FAILURE)
        if not response.HasField("result"):
            logger.error("no refresh result found")
            return RefreshDecision(expired=True)
        result = response.result
        if result.expired:
            return RefreshDecision(expired=True)
        info = payload(result.info, result.b64info)
        return RefreshDecision(
            expire_at=result.expire_at,
            conn_info=info if result.info or result.b64info else None,
            meta=result.meta or None,
        )
