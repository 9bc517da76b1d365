"""The JSON encoding of the client protocol: newline-delimited objects in UTF-8 text frames.

A frame batches one or more messages separated by ``\\n``; a trailing newline, ``\\r\\n`` line ends
and blank lines are tolerated. See https://centrifugal.dev/docs/transports/client_protocol
(section "Batching") and ``json_mapping`` for how each message maps to an object.
"""

from __future__ import annotations

import re
from typing import Final, TypeVar

import orjson
from google.protobuf.message import Message

from rotary.protocol import json_depth, pb
from rotary.protocol.codec import ProtocolError, ProtocolType
from rotary.protocol.json_mapping import fill, to_jsonable

M = TypeVar("M", bound=Message)


class JsonCodec:
    """Stateless; use the shared instance from ``codec_for(ProtocolType.JSON)``."""

    protocol_type = ProtocolType.JSON

    def decode(self, data: bytes, message_type: type[M]) -> list[M]:
        """All messages of one frame, in order; a frame without any is a ProtocolError."""
        if data.find(b"\n") < 0 and data.strip():  # one message: the frame is its line
            return [_decode_line(data, message_type)]
        lines = data.split(b"\n")
        messages = [_decode_line(line, message_type) for line in lines if line.strip()]
        if not messages:
            raise ProtocolError("empty frame")
        return messages

    def decode_commands(self, data: bytes) -> list[pb.Command]:
        return self.decode(data, pb.Command)

    def encode(self, message: Message) -> bytes:
        """One compact JSON object, fields in field-number order; an empty message is ``{}``."""
        return orjson.dumps(to_jsonable(message))

    def encode_reply(self, reply: pb.Reply) -> bytes:
        return self.encode(reply)

    def encode_result(self, command_id: int, field: str, result: Message) -> bytes:
        body = to_jsonable(result)
        return orjson.dumps({"id": command_id, field: body} if command_id else {field: body})

    def encode_push(self, push: pb.Push) -> bytes:
        return self.encode(push)

    def join(self, messages: list[bytes]) -> bytes:
        return b"\n".join(messages)


_NEGATIVE_ZERO: Final = re.compile(rb"-0(?![0-9.eE])")
"""The integer ``-0``, which the plain reading makes 0 (it also matches in strings, ``"a-0"``). A
line is read a second, exact time only when its value holds a float (which ``loads`` also makes of
an integer past 64 bits) or this pattern matches, so payload numbers reach subscribers as their
publisher wrote them."""


def _has_float(value: object) -> bool:
    """Whether a number was read as a float, so that it may be spelled differently from the line.

    Asked before the pattern above: walking the few values of a command costs less than scanning
    its line, which a connect's token makes long. Iterative: any depth. Exact types, not
    isinstance: a parsed value holds only the built-in ones (and Fragments, which are none of them)."""
    if type(value) is dict:  # a command: look at its values first, most of them are not containers
        stack = []
        for item in value.values():
            kind = type(item)
            if kind is float:
                return True
            if kind is dict or kind is list:
                stack.append(item)
    else:
        stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            return True
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


def _decode_line(line: bytes, message_type: type[M]) -> M:
    try:
        try:  # json_depth.loads without its own frame: orjson first, which nearly always reads it
            obj = orjson.loads(line)  # also rejects invalid UTF-8 and lone surrogates
        except orjson.JSONDecodeError:
            obj = json_depth.loads(line)  # too deep for orjson (any depth), or not JSON
        # bytes.find, not `in`: on Python 3.11 `in` first tries the operand as an int and formats
        # the TypeError it discards, which costs more than the search
        if _has_float(obj) or (line.find(b"-0") >= 0 and _NEGATIVE_ZERO.search(line)):
            obj = json_depth.loads_exact(line)
    except json_depth.InvalidJson as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
    message = message_type()
    fill(message, obj)
    return message


JSON_CODEC: Final = JsonCodec()
