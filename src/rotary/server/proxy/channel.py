"""Subscribe, publish and subscription refresh proxies, chosen per namespace by name.

The subscribe proxy decides a subscription the namespace would otherwise grant by permission; the
publish proxy decides (and may rewrite) a publication; a sub_refresh proxy makes subscription
refresh server-side. See https://centrifugal.dev/docs/server/proxy#subscribe-proxy,
https://centrifugal.dev/docs/server/proxy#publish-proxy and
https://centrifugal.dev/docs/server/proxy#sub-refresh-proxy
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace

from rotary.node.errors import ClientError
from rotary.node.hooks import ClientView, PublishDecision, SubRefreshDecision, SubscribeOptions
from rotary.protocol import codes, pb
from rotary.server.channels import ResolvedChannel
from rotary.server.grants import namespace_subscription
from rotary.server.proxy import messages
from rotary.server.proxy.backends import Backend
from rotary.server.proxy.connection import RETRY_AFTER_FAILURE, override_of
from rotary.server.proxy.outcome import ask, payload, raise_refusal
from rotary.server.proxy.requests import client_request, context_of, subscribe_request

logger = logging.getLogger("rotary.server.proxy")


def _backend(backends: Mapping[str, Backend], enabled: bool, name: str) -> Backend:
    backend = backends.get(name) if enabled else None
    if backend is None:  # a namespace that enables no such proxy is 108, as in Centrifugo
        raise ClientError(codes.ERROR_NOT_AVAILABLE)
    return backend


class ChannelProxies:
    """The subscribe, publish and sub_refresh backends by proxy name."""

    def __init__(
        self,
        subscribe: Mapping[str, Backend],
        publish: Mapping[str, Backend],
        sub_refresh: Mapping[str, Backend],
    ) -> None:
        self._subscribe = subscribe
        self._publish = publish
        self._sub_refresh = sub_refresh

    async def subscribe(
        self, client: ClientView, target: ResolvedChannel, request: pb.SubscribeRequest
    ) -> SubscribeOptions:
        """The namespace's grant with the backend's expiry, info, data and overrides."""
        options = target.options
        backend = _backend(self._subscribe, options.subscribe_proxy_enabled, options.subscribe_proxy_name)
        proxied = subscribe_request(backend, client, target, request)
        response = await ask(backend, "Subscribe", proxied, messages.SubscribeResponse, context_of(client))
        raise_refusal(response)
        result = response.result
        granted = namespace_subscription(target.namespace, override_of(result.override))
        granted.auto_cache_recover = (
            granted.recoverable and options.auto_cache_recover and granted.cache_recovery
        )
        granted.chan_info = payload(result.info, result.b64info)
        granted.data = payload(result.data, result.b64data)
        granted.expire_at = result.expire_at
        granted.server_side_refresh = options.sub_refresh_proxy_enabled
        return granted

    async def publish(
        self, client: ClientView, target: ResolvedChannel, request: pb.PublishRequest
    ) -> PublishDecision:
        """The backend may replace the data, skip history, and add tags, an idempotency key,
        delta or a version."""
        backend = _backend(
            self._publish, target.options.publish_proxy_enabled, target.options.publish_proxy_name
        )
        proxied = client_request(
            messages.PublishRequest, backend, client, request.data, channel=target.channel
        )
        response = await ask(backend, "Publish", proxied, messages.PublishResponse, context_of(client))
        raise_refusal(response)
        info = pb.ClientInfo(
            user=client.user,
            client=client.id,
            conn_info=client.conn_info,
            chan_info=client.chan_info(target.channel),
        )
        options = replace(target.publish_options(), client_info=info)
        if not response.HasField("result"):
            return PublishDecision(data=request.data, options=options)
        result = response.result
        data = result.data if result.data else payload(b"", result.b64data) or request.data
        if result.skip_history:
            options = replace(options, history_size=0, history_ttl=0.0)
        options = replace(
            options,
            tags=dict(result.tags),
            idempotency_key=result.idempotency_key,
            use_delta=result.delta,
            version=result.version,
            version_epoch=result.version_epoch,
        )
        return PublishDecision(data=data, options=options)

    async def sub_refresh(self, client: ClientView, target: ResolvedChannel) -> SubRefreshDecision:
        """Errors of the backend give the subscription one more minute; a missing result ends it."""
        backend = _backend(
            self._sub_refresh, target.options.sub_refresh_proxy_enabled, target.options.sub_refresh_proxy_name
        )
        request = client_request(messages.SubRefreshRequest, backend, client, channel=target.channel)
        try:
            response = await ask(
                backend, "SubRefresh", request, messages.SubRefreshResponse, context_of(client)
            )
        except ClientError:
            return SubRefreshDecision(expire_at=int(time.time()) + RETRY_AFTER_FAILURE)
        if not response.HasField("result"):
            logger.error("no sub refresh result found")
            return SubRefreshDecision(expired=True)
        result = response.result
        if result.expired:
            return SubRefreshDecision(expired=True)
        info = payload(result.info, result.b64info)
        return SubRefreshDecision(expire_at=result.expire_at, chan_info=info or None)
