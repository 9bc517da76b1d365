"""The subscribe stream proxy: a GRPC stream per subscription, its publications for that subscriber.

The backend's first message answers the subscribe (result, error or disconnect); every later
message is a publication pushed to this subscriber only, without an offset (no recovery or
positioning on such channels). The stream ending ends the subscription with 2000, a stream error
with 2500. A bidirectional stream also takes the subscriber's publications. Only GRPC endpoints
stream. See https://centrifugal.dev/docs/server/proxy_streams
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import grpc  # type: ignore[import-untyped]

from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import ClientView, FeedSink, SubscribeOptions
from rotary.protocol import codes, pb
from rotary.server.channels import ResolvedChannel
from rotary.server.proxy import messages
from rotary.server.proxy._pb.proxy_pb2 import Publication, StreamSubscribeRequest, StreamSubscribeResponse
from rotary.server.proxy.backends import Backend, GrpcBackend
from rotary.server.proxy.connection import override_of
from rotary.server.proxy.headers import CallContext
from rotary.server.proxy.outcome import payload
from rotary.server.proxy.requests import context_of, subscribe_request

logger = logging.getLogger("rotary.server.proxy")


class GrpcFeed:
    """One subscription's stream: opened by the subscribe, read once the subscription is live."""

    def __init__(self, backend: GrpcBackend, bidirectional: bool) -> None:
        self._backend = backend
        self._bidirectional = bidirectional
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def bidirectional(self) -> bool:
        return self._bidirectional

    async def open(
        self, request: messages.SubscribeRequest, context: CallContext
    ) -> messages.SubscribeResponse:
        """The backend's answer to the subscribe; ClientError(100) when the stream gives none in time."""
        backend = self._backend
        try:
            if self._bidirectional:
                self._call = backend.open_stream(
                    "SubscribeBidirectional", None, StreamSubscribeResponse, context
                )
                await self._call.write(StreamSubscribeRequest(subscribe_request=request))
            else:
                self._call = backend.open_stream(
                    "SubscribeUnidirectional", request, StreamSubscribeResponse, context
                )
            first = await asyncio.wait_for(self._call.read(), backend.config.timeout)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, TimeoutError, ValueError, OSError) as exc:
            logger.error("error from subscribe stream proxy %s: %r", backend.config.endpoint, exc)
            self.close()
            raise ClientError(codes.ERROR_INTERNAL) from None
        if first is grpc.aio.EOF or not first.HasField("subscribe_response"):
            logger.error("no subscribe response in first message from stream proxy")
            self.close()
            raise ClientError(codes.ERROR_INTERNAL)
        response: messages.SubscribeResponse = first.subscribe_response
        return response

    def attach(self, sink: FeedSink) -> None:
        if not self._closed and self._reader is None:
            self._reader = asyncio.ensure_future(self._read(sink))

    async def _read(self, sink: FeedSink) -> None:
        try:
            while True:
                message = await self._call.read()
                if message is grpc.aio.EOF:
                    sink.end(codes.UNSUBSCRIBE_SERVER)
                    return
                if message.HasField("publication"):
                    sink.publication(message.publication.data, dict(message.publication.tags))
        except grpc.aio.AioRpcError as exc:
            if not self._closed:
                logger.info("subscribe stream ended with %s", exc.code().name)
                sink.end(codes.UNSUBSCRIBE_INSUFFICIENT_STATE)

    async def publish(self, data: bytes) -> None:
        if not self._bidirectional or self._closed:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        try:
            await self._call.write(StreamSubscribeRequest(publication=Publication(data=data)))
        except (grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
            logger.error("error publishing into subscribe stream: %r", exc)
            raise ClientError(codes.ERROR_INTERNAL) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
        if self._call is not None:
            self._call.cancel()


class StreamProxies:
    """The subscribe stream backends by proxy name (GRPC only; validation refuses others)."""

    def __init__(self, backends: Mapping[str, Backend]) -> None:
        self._backends = {name: b for name, b in backends.items() if isinstance(b, GrpcBackend)}

    async def subscribe(
        self, client: ClientView, target: ResolvedChannel, request: pb.SubscribeRequest
    ) -> SubscribeOptions:
        options = target.options
        backend = self._backends.get(options.subscribe_stream_proxy_name)
        if backend is None or not options.subscribe_stream_proxy_enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        proxied = subscribe_request(backend, client, target, request)
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
