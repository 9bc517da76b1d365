"""The codec contract: bytes of one transport frame <-> protocol messages.

Messages are the upb classes generated from proto/rotary/client.proto (``rotary.protocol.pb``): one
schema serves both encodings, so there is no second, hand-kept mirror of forty message types. A codec
never raises anything but :class:`ProtocolError` on bad input; the connection driver turns that into
disconnect 3501 "bad request". See https://centrifugal.dev/docs/transports/client_protocol.
"""

from __future__ import annotations

import enum
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from rotary.protocol import pb

M = TypeVar("M", bound=Message)


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

    def decode(self, data: bytes, message_type: type[M]) -> list[M]:
        """All messages of ``message_type`` in one frame, in order; an empty frame is a ProtocolError.

        Servers need only :meth:`decode_commands`; the other types serve clients, tests and the
        unidirectional transports, whose first message is a bare ConnectRequest.
        """
        ...

    def encode(self, message: Message) -> bytes:
        """Any one message, ready for :meth:`join` (Protobuf: already length-prefixed)."""
        ...

    def decode_commands(self, data: bytes) -> list[pb.Command]:
        """All commands of one inbound frame, in order; an empty frame is a ProtocolError."""
        ...

    def encode_reply(self, reply: pb.Reply) -> bytes:
        """One reply (or a push wrapped in a reply), ready for :meth:`join`."""
        ...

    def encode_result(self, command_id: int, field: str, result: Message) -> bytes:
        """The reply to command ``command_id`` with ``result`` in its field ``field``: the bytes
        ``encode_reply(Reply(id=command_id, <field>=result))`` gives, without building that Reply,
        which would copy the result (a subscribe's recovered publications, a history page)."""
        ...

    def encode_push(self, push: pb.Push) -> bytes:
        """A bare push, as unidirectional transports send it."""
        ...

    def join(self, messages: list[bytes]) -> bytes:
        """One frame that batches already encoded messages."""
        ...


def codec_for(protocol_type: ProtocolType) -> Codec:
    """The shared, stateless codec of ``protocol_type``."""
    if not _CODECS:  # filled on first use: both codec modules import ProtocolError and ProtocolType from here
        from rotary.protocol.json_codec import JSON_CODEC
        from rotary.protocol.protobuf_codec import PROTOBUF_CODEC

        _CODECS.update({ProtocolType.JSON: JSON_CODEC, ProtocolType.PROTOBUF: PROTOBUF_CODEC})
    return _CODECS[protocol_type]


_CODECS: dict[ProtocolType, Codec] = {}
"""Every connection asks for its codec; the imports and the table are made once."""
