"""The codec contract: bytes of one transport frame <-> protocol messages.

Messages are the upb classes generated from proto/rotary/client.proto (``rotary.protocol.pb``): one
schema serves both encodings, so there is no second, hand-kept mirror of forty message types. A codec
never raises anything but :class:`ProtocolError` on bad input; the connection driver turns that into
disconnect 3501 "bad request". See https://centrifugal.dev/docs/transports/client_protocol.
"""

from __future__ import annotations

import enum
from typing import Protocol

from rotary.protocol import pb


class ProtocolType(enum.Enum):
    """The two encodings of the client protocol."""

    JSON = "json"
    PROTOBUF = "protobuf"


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame of the negotiated protocol."""


class Codec(Protocol):
    """Encodes and decodes the frames of one :class:`ProtocolType`.

    A frame may batch several messages: JSON joins them with ``\\n``, Protobuf prefixes each with
    its uvarint length (a single message is still prefixed).
    """

    protocol_type: ProtocolType

    def decode_commands(self, data: bytes) -> list[pb.Command]:
        """All commands of one inbound frame, in order; an empty frame is a ProtocolError."""
        ...

    def encode_reply(self, reply: pb.Reply) -> bytes:
        """One reply (or a push wrapped in a reply), without frame separators."""
        ...

    def encode_push(self, push: pb.Push) -> bytes:
        """A bare push, as unidirectional transports send it."""
        ...

    def join(self, messages: list[bytes]) -> bytes:
        """One frame that batches already encoded messages."""
        ...
