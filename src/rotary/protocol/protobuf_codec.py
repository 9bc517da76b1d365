"""The Protobuf encoding of the client protocol: uvarint-length-delimited messages in binary frames.

Every message of a frame, even a lone one, is prefixed with its length as a protobuf uvarint, so a
server ping (an empty Reply) is the single byte ``0x00``. See
https://centrifugal.dev/docs/transports/client_protocol (section "Batching").
"""

from __future__ import annotations

from typing import Final, TypeVar

from google.protobuf.message import DecodeError, Message

from rotary.protocol import pb
from rotary.protocol.codec import ProtocolError, ProtocolType

M = TypeVar("M", bound=Message)

_MAX_VARINT_BYTES: Final = 10  # a uint64 needs at most ten 7-bit groups


def uvarint(value: int) -> bytes:
    """The protobuf base-128 encoding of a non-negative integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """The uvarint starting at ``pos`` and the position just after it."""
    value = shift = 0
    for index in range(pos, min(len(data), pos + _MAX_VARINT_BYTES)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    raise ProtocolError("truncated or overlong length prefix")


def delimited(body: bytes) -> bytes:
    """``body`` with its length prefix: one item of a Protobuf frame."""
    return uvarint(len(body)) + body


class ProtobufCodec:
    """Stateless; use the shared instance from ``codec_for(ProtocolType.PROTOBUF)``."""

    protocol_type = ProtocolType.PROTOBUF

    def decode(self, data: bytes, message_type: type[M]) -> list[M]:
        """All messages of one frame, in order; an empty frame or trailing bytes are a ProtocolError."""
        if not data:
            raise ProtocolError("empty frame")
        messages: list[M] = []
        pos = 0
        while pos < len(data):
            size, pos = read_uvarint(data, pos)
            end = pos + size
            if end > len(data):
                raise ProtocolError("message length beyond the end of the frame")
            messages.append(_parse(data[pos:end], message_type))
            pos = end
        return messages

    def decode_commands(self, data: bytes) -> list[pb.Command]:
        return self.decode(data, pb.Command)

    def encode(self, message: Message) -> bytes:
        """One length-prefixed message; maps are written in key order so equal messages give equal bytes."""
        return delimited(message.SerializeToString(deterministic=True))

    def encode_reply(self, reply: pb.Reply) -> bytes:
        return self.encode(reply)

    def encode_result(self, command_id: int, field: str, result: Message) -> bytes:
        body = result.SerializeToString(deterministic=True)
        reply = _REPLY_ID + uvarint(command_id) if command_id else b""
        return delimited(reply + _REPLY_FIELD_TAGS[field] + uvarint(len(body)) + body)

    def encode_push(self, push: pb.Push) -> bytes:
        return self.encode(push)

    def join(self, messages: list[bytes]) -> bytes:
        return b"".join(messages)


_REPLY_ID: Final = uvarint(pb.Reply.DESCRIPTOR.fields_by_name["id"].number << 3)
"""The key of Reply.id, a varint (wire type 0)."""

_REPLY_FIELD_TAGS: Final = {
    field.name: uvarint(field.number << 3 | 2)
    for field in pb.Reply.DESCRIPTOR.fields
    if field.message_type is not None
}
"""The key of each message field of Reply (wire type 2, length-delimited), by name."""


def _parse(body: bytes, message_type: type[M]) -> M:
    try:
        return message_type.FromString(body)
    except DecodeError as exc:
        raise ProtocolError(f"invalid {message_type.DESCRIPTOR.name}: {exc}") from exc


PROTOBUF_CODEC: Final = ProtobufCodec()
