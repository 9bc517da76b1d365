"""The requests rotary sends a proxy about a connected client, built in one place.

Every channel-level and RPC request (and the refresh request) starts with the same fields:
the client's id, transport, protocol, the payload encoding, the user and, when the proxy asks
for it, the connection meta; a payload travels as raw JSON in ``data`` or, with
``binary_encoding``, as base64 in ``b64data``. See https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

from google.protobuf.message import Message

from rotary.node.hooks import ClientView
from rotary.protocol import pb
from rotary.server.channels import ResolvedChannel
from rotary.server.proxy import messages
from rotary.server.proxy.backends import Backend
from rotary.server.proxy.headers import CallContext
from rotary.server.proxy.outcome import encoding

M = TypeVar("M", bound=Message)


def context_of(client: ClientView) -> CallContext:
    return CallContext(client.headers, client.emulated_headers, client.grpc_metadata)


def meta_for(backend: Backend, client: ClientView) -> bytes:
    """The connection meta, when the proxy asks for it (``include_connection_meta``)."""
    return client.meta if backend.config.include_connection_meta else b""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def with_payload(request: M, binary: bool, data: bytes) -> M:
    """``data`` as raw JSON, or base64 in ``b64data`` when the proxy uses binary encoding."""
    if binary:
        request.b64data = b64(data)  # type: ignore[attr-defined]
    else:
        request.data = data  # type: ignore[attr-defined]
    return request


def client_request(
    message_type: type[M], backend: Backend, client: ClientView, data: bytes | None = None, **fields: Any
) -> M:
    """A request about ``client`` with the fields every such request carries, ``fields`` and,
    when given, the ``data`` payload."""
    binary = backend.config.binary_encoding
    request = message_type(
        client=client.id,
        transport=client.transport_name,
        protocol=client.protocol.value,
        encoding=encoding(binary),
        user=client.user,
        meta=meta_for(backend, client),
        **fields,
    )
    return request if data is None else with_payload(request, binary, data)


def subscribe_request(
    backend: Backend, client: ClientView, target: ResolvedChannel, request: pb.SubscribeRequest
) -> messages.SubscribeRequest:
    """What the subscribe proxy and the subscribe stream proxy are both asked."""
    return client_request(
        messages.SubscribeRequest,
        backend,
        client,
        request.data,
        channel=target.channel,
        token=request.token,
    )
