"""The GRPC side of the proxies: unary calls of CentrifugoProxy and the subscribe streams.

grpcio comes with the ``grpc`` extra (``pip install 'rotary[grpc]'``); this module is imported only
when a config names a GRPC proxy endpoint, which validation refuses without the extra
(rotary.server.config.extras). See https://centrifugal.dev/docs/server/proxy#grpc-proxy and
https://centrifugal.dev/docs/server/proxy_streams
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

import grpc  # type: ignore[import-untyped]
from google.protobuf.message import Message

from rotary.node.errors import ClientError
from rotary.node.hooks import FeedSink
from rotary.node.metrics import Metrics
from rotary.protocol import codes
from rotary.server.config.schema import ProxyConfig, TLSConfig
from rotary.server.pem import read_pem
from rotary.server.proxy import messages
from rotary.server.proxy._pb.proxy_pb2 import Publication, StreamSubscribeRequest, StreamSubscribeResponse
from rotary.server.proxy.backends import Unanswered, client_tls
from rotary.server.proxy.headers import CallContext, forwarded
from rotary.server.proxy.messages import SERVICE
from rotary.server.proxy.tls_relay import TlsRelay
from rotary.server.tracing import inject_trace

M = TypeVar("M", bound=Message)

logger = logging.getLogger("rotary.server.proxy")


class GrpcBackend:
    """Unary calls of CentrifugoProxy on ``host:port`` (or ``grpc://host:port``); one channel per proxy."""

    protocol = "grpc"

    def __init__(self, config: ProxyConfig, name: str = "default") -> None:
        self.config = config
        self.name = name
        self.metrics: Metrics | None = None
        self._target = config.endpoint.removeprefix("grpc://")
        self._channel: grpc.aio.Channel | None = None
        self._relay: TlsRelay | None = None
        self._compression = grpc.Compression.Gzip if config.grpc.compression else None
        credentials = config.grpc
        self._credentials = (
            ((credentials.credentials_key.lower(), credentials.credentials_value),)
            if credentials.credentials_key
            else ()
        )

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            tls = self.config.grpc.tls
            if tls.enabled and tls.insecure_skip_verify:
                self._relay = TlsRelay(self._target, client_tls(tls), tls.server_name)
                authority = [("grpc.default_authority", self._target)]
                self._channel = grpc.aio.insecure_channel(self._relay.target, authority)
            elif tls.enabled:
                self._channel = grpc.aio.secure_channel(
                    self._target, _grpc_credentials(tls), _grpc_options(tls)
                )
            else:
                self._channel = grpc.aio.insecure_channel(self._target)
        return self._channel

    def _metadata(self, context: CallContext) -> list[tuple[str, str]]:
        sent = inject_trace(forwarded(self.config, context, self.config.grpc.static_metadata))
        metadata = list(sent.items())
        metadata.extend(self._credentials)
        return metadata

    def open_stream(
        self, method: str, first: Message | None, response_type: type[M], context: CallContext
    ) -> Any:
        """A streaming call of CentrifugoProxy: server-streaming with ``first`` as its request, or
        bidirectional (``first`` None, the caller writes). May raise ValueError or OSError."""
        channel = self._open()
        path = f"/{SERVICE}/{method}"
        options = {"metadata": self._metadata(context), "compression": self._compression}
        if first is None:
            bidi = channel.stream_stream(
                path, request_serializer=_serialize, response_deserializer=response_type.FromString
            )
            return bidi(**options)
        uni = channel.unary_stream(
            path, request_serializer=_serialize, response_deserializer=response_type.FromString
        )
        return uni(first, **options)

    async def call(self, method: str, request: Message, response_type: type[M], context: CallContext) -> M:
        metadata = self._metadata(context)
        try:
            invoke = self._open().unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=_serialize,
                response_deserializer=response_type.FromString,
            )
            answer: M = await invoke(
                request, timeout=self.config.timeout, metadata=metadata, compression=self._compression
            )
        except grpc.aio.AioRpcError as exc:
            raise Unanswered(f"GRPC error: {exc.code().name} {exc.details()}") from None
        except (ValueError, OSError) as exc:  # TLS material grpc cannot use, a target without a port
            raise Unanswered(f"GRPC channel error: {exc!r}") from None
        return answer

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        if self._relay is not None:
            await self._relay.close()
            self._relay = None


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _grpc_credentials(tls: TLSConfig) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem(tls.server_ca_pem) if tls.server_ca_pem else None,
        private_key=read_pem(tls.key_pem) if tls.key_pem else None,
        certificate_chain=read_pem(tls.cert_pem) if tls.cert_pem else None,
    )


def _grpc_options(tls: TLSConfig) -> list[tuple[str, str]]:
    return [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []


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
