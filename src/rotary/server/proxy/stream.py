"""The subscribe stream proxy: a GRPC stream per subscription, its publications for that subscriber.

The backend's first message answers the subscribe (result, error or disconnect); every later
message is a publication pushed to this subscriber only, without an offset (no recovery or
positioning on such channels). The stream ending ends the subscription with 2000, a stream error
with 2500. A bidirectional stream also takes the subscriber's publications. Only GRPC endpoints
stream. See https://centrifugal.dev/docs/server/proxy_streams
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeGuard

from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import ClientView, SubscribeOptions
from rotary.protocol import codes, pb
from rotary.server.channels import ResolvedChannel
from rotary.server.proxy import messages
from rotary.server.proxy.backends import Backend
from rotary.server.proxy.connection import override_of
from rotary.server.proxy.outcome import payload
from rotary.server.proxy.requests import context_of, subscribe_request

if TYPE_CHECKING:  # grpcio is the `grpc` extra, imported once a GRPC stream proxy is used
    from rotary.server.proxy.grpc_backend import GrpcBackend, GrpcFeed


class StreamProxies:
    """The subscribe stream backends by proxy name (GRPC only; validation refuses others)."""

    def __init__(self, backends: Mapping[str, Backend]) -> None:
        self._backends = {name: b for name, b in backends.items() if _is_grpc(b)}

    async def subscribe(
        self, client: ClientView, target: ResolvedChannel, request: pb.SubscribeRequest
    ) -> SubscribeOptions:
        options = target.options
        backend = self._backends.get(options.subscribe_stream_proxy_name)
        if backend is None or not options.subscribe_stream_proxy_enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        proxied = subscribe_request(backend, client, target, request)
        from rotary.server.proxy.grpc_backend import GrpcFeed

        feed = GrpcFeed(backend, options.subscribe_stream_proxy_bidirectional)
        response = await feed.open(proxied, context_of(client))
        try:
            return self._granted(target, response, feed)
        except BaseException:
            feed.close()
            raise

    @staticmethod
    def _granted(
        target: ResolvedChannel, response: messages.SubscribeResponse, feed: GrpcFeed
    ) -> SubscribeOptions:
        """Presence and join/leave from the namespace and the overrides; never recovery or positioning."""
        if response.HasField("disconnect"):
            raise DisconnectError(codes.Disconnect(response.disconnect.code, response.disconnect.reason))
        if response.HasField("error"):  # the temporary flag does not travel on this path
            raise ClientError(codes.ErrorCode(response.error.code, response.error.message))
        options = target.options
        result = response.result
        override = override_of(result.override)
        return SubscribeOptions(
            chan_info=payload(result.info, result.b64info),
            data=payload(result.data, result.b64data),
            expire_at=result.expire_at,
            emit_presence=options.presence if override.presence is None else override.presence,
            emit_join_leave=options.join_leave if override.join_leave is None else override.join_leave,
            push_join_leave=(
                options.force_push_join_leave
                if override.force_push_join_leave is None
                else override.force_push_join_leave
            ),
            feed=feed,
        )


def _is_grpc(backend: Backend) -> TypeGuard[GrpcBackend]:
    return backend.protocol == "grpc"
