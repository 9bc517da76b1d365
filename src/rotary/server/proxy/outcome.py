"""How a backend's answer, or its silence, reaches the client, as Centrifugo passes it on.

``disconnect`` closes the connection with the backend's code and reason, ``error`` answers the
command with its code, message and temporary flag, both as they are. A backend that gives no usable
answer (timeout, refused connection, bad status, malformed body, GRPC error) costs the command an
internal error (100); a bad base64 field too. See https://centrifugal.dev/docs/server/proxy#return-custom-error
"""

from __future__ import annotations

import base64
import binascii
import logging
from contextlib import ExitStack
from typing import Final, Protocol, TypeVar

from google.protobuf.message import Message

from rotary.node.errors import ClientError, DisconnectError
from rotary.protocol import codes
from rotary.server.proxy.backends import Backend, Unanswered
from rotary.server.proxy.headers import CallContext
from rotary.server.proxy.messages import Disconnect, Error
from rotary.server.tracing import proxy_span

logger = logging.getLogger("rotary.server.proxy")

R = TypeVar("R", bound=Message)


class Refusable(Protocol):
    """A response with the two refusal fields every CentrifugoProxy response carries."""

    @property
    def error(self) -> Error: ...

    @property
    def disconnect(self) -> Disconnect: ...

    def HasField(self, field_name: str) -> bool: ...


KINDS: Final[dict[str, str]] = {
    "Connect": "connect",
    "Refresh": "refresh",
    "Subscribe": "subscribe",
    "Publish": "publish",
    "SubRefresh": "sub_refresh",
    "RPC": "rpc",
}
"""CentrifugoProxy method -> the proxy type that metrics and traces name it by."""


async def ask(
    backend: Backend, method: str, request: Message, response_type: type[R], context: CallContext
) -> R:
    """The backend's answer, or ClientError(100) when there is none; timed in the node's metrics and
    traced as a client span when those are on (a failed call counts as a proxy error)."""
    kind = KINDS.get(method, method.lower())
    with ExitStack() as observed:
        if backend.metrics is not None:
            observed.enter_context(backend.metrics.proxy_call(backend.protocol, kind, backend.name))
        observed.enter_context(proxy_span(kind, backend.name))
        try:
            return await backend.call(method, request, response_type, context)
        except Unanswered as exc:
            logger.error("error proxying %s to %s: %s", method, backend.config.endpoint, exc)
            raise ClientError(codes.ERROR_INTERNAL) from None


def raise_refusal(response: Refusable) -> None:
    """A ``disconnect`` wins over an ``error``, both passed to the client as the backend sent them."""
    if response.HasField("disconnect"):
        disconnect = response.disconnect
        raise DisconnectError(codes.Disconnect(disconnect.code, disconnect.reason))
    if response.HasField("error"):
        error = response.error
        raise ClientError(codes.ErrorCode(error.code, error.message, error.temporary))


def payload(raw: bytes, b64: str) -> bytes:
    """A bytes field sent either as raw JSON or, for binary payloads, base64 in its ``b64`` twin."""
    if not b64:
        return raw
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        logger.error("error decoding base64 payload from proxy")
        raise ClientError(codes.ERROR_INTERNAL) from None


def encoding(binary: bool) -> str:
    """The request's ``encoding`` field: how its payload fields are spelled."""
    return "binary" if binary else "json"
