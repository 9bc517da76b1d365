"""Unidirectional GRPC: `CentrifugoUniStream.Consume(ConnectRequest) returns (stream Push)`.

Served by grpc.aio on its own port (`uni_grpc.port`, 11000 by default) under Centrifugo's service
name, so clients generated from Centrifugo's unistream.proto work unchanged. The protocol is
Protobuf: each Push (connect first, then publications, joins, leaves, empty pings, and a disconnect
before the stream ends) is one GRPC message, written as already encoded bytes, so a prepared
publication is shared by every GRPC subscriber. GRPC's flow control holds what a slow client does
not take; past `client.queue_max_size` queued bytes it is closed with 3008.
See https://centrifugal.dev/docs/transports/uni_grpc.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, replace
from typing import Any

import grpc  # type: ignore[import-untyped]
from grpc import aio

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes, pb
from rotary.protocol._pb import unistream_pb2
from rotary.protocol.codec import ProtocolType, codec_for
from rotary.protocol.uni_framing import undelimited
from rotary.transports.uni_connect import sends_disconnect_push

log = logging.getLogger("rotary.transports.uni_grpc")

SERVICE = "centrifugal.centrifugo.unistream.CentrifugoUniStream"
PING_INTERVAL = 25.0
"""Seconds between pings: Centrifugo gives uni_grpc centrifuge's default whatever client.ping_interval
says."""


class UniGrpcTransport:
    """A queue of encoded Push messages that the stream's handler writes one after another."""

    name = "uni_grpc"
    unidirectional = True
    protocol = ProtocolType.PROTOBUF
    framing = "grpc"

    def __init__(self) -> None:
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0
        self._ready = asyncio.Event()
        self._ended = False

    def frame(self, payload: bytes) -> bytes:
        """The Push without its length prefix; prepared payloads hold exactly one."""
        (message,) = undelimited(payload)
        return message

    def write(self, payload: bytes) -> None:
        for message in undelimited(payload):
            self.write_prepared(message)

    def write_prepared(self, frame: bytes) -> int:
        if not self._ended:
            self._queue.append(frame)
            self._queued_bytes += len(frame)
            self._ready.set()
        return self._queued_bytes

    def close(self, disconnect: codes.Disconnect) -> int:
        if self._ended:
            return 0
        if disconnect == codes.DISCONNECT_SLOW:
            self.abort()  # it does not read: do not wait for it to take the backlog
            return 0
        pushed = b""
        if sends_disconnect_push(disconnect):
            push = pb.Push(disconnect=pb.Disconnect(code=disconnect.code, reason=disconnect.reason))
            pushed = codec_for(ProtocolType.PROTOBUF).encode_push(push)
            self.write(pushed)
        self._ended = True
        self._ready.set()
        return len(pushed)

    def abort(self) -> None:
        """Ends the stream with no goodbye: what is queued is dropped."""
        self._queue.clear()
        self._queued_bytes = 0
        self._ended = True
        self._ready.set()

    async def next_message(self) -> bytes | None:
        """The next Push to send; None once the connection is closed and everything was taken."""
        while not self._queue:
            if self._ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        message = self._queue.popleft()
        self._queued_bytes -= len(message)
        return message


def connect_request(request: unistream_pb2.ConnectRequest) -> pb.ConnectRequest:
    """The client protocol's ConnectRequest with the fields the GRPC one carries."""
    result = pb.ConnectRequest(
        token=request.token, data=request.data, name=request.name, version=request.version
    )
    for key, value in request.headers.items():
        result.headers[key] = value
    for channel, sub in request.subs.items():
        result.subs[channel].CopyFrom(
            pb.SubscribeRequest(recover=sub.recover, epoch=sub.epoch, offset=sub.offset)
        )
    return result


def _identity(data: bytes) -> bytes:
    return data


def consume_handler(node: Node) -> grpc.GenericRpcHandler:
    """The service with its one server-streaming method, writing Push bytes as they are."""

    async def consume(
        request: unistream_pb2.ConnectRequest, context: aio.ServicerContext[Any, bytes]
    ) -> None:
        if node.closing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "shutting down")
        transport = UniGrpcTransport()
        client = Client(node, transport, {}, context.peer())
        client.grpc_metadata = {
            key.lower(): value for key, value in context.invocation_metadata() or () if isinstance(value, str)
        }
        client.session.limits = replace(client.session.limits, ping_interval=PING_INTERVAL)
        try:
            failure = await client.connect_unidirectional(connect_request(request))
            if failure is not None:
                client.close(client.unidirectional_disconnect(failure))
            while (message := await transport.next_message()) is not None:
                await context.write(message)
        finally:
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)

    method = grpc.unary_stream_rpc_method_handler(
        consume,
        request_deserializer=unistream_pb2.ConnectRequest.FromString,
        response_serializer=_identity,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"Consume": method})


@dataclass(frozen=True, slots=True)
class UniGrpcTLS:
    """The PEM bytes of the server's certificate and key, and of the CA that client certificates need."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes = b""


async def start_uni_grpc(
    node: Node, address: str, port: int, max_receive_message_size: int = 0, tls: UniGrpcTLS | None = None
) -> aio.Server:
    """A started GRPC server for unidirectional clients on ``address:port``."""
    options = (
        [("grpc.max_receive_message_length", max_receive_message_size)] if max_receive_message_size else []
    )
    server = aio.server(options=options)
    server.add_generic_rpc_handlers((consume_handler(node),))
    target = f"{address or '0.0.0.0'}:{port}"
    if tls is None:
        server.add_insecure_port(target)
    else:
        root = tls.client_ca_pem or None
        credentials = grpc.ssl_server_credentials(
            [(tls.key_pem, tls.cert_pem)],
            root_certificates=root,
            require_client_auth=root is not None,
        )
        server.add_secure_port(target, credentials)
    await server.start()
    log.info("serving uni_grpc on %s", target)
    return server
