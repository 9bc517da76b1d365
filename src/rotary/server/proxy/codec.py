"""The JSON form of proxy messages, as Centrifugo's HTTP proxy writes and reads it.

Centrifugo marshals the generated Go structs with encoding/json: every field is omitted when empty
except ``user`` of the channel-level requests, and the bytes fields ``data``, ``info`` and ``meta``
are raw JSON (spliced in as is, read back as the JSON text of the value). Reading is Go's: keys match
case-insensitively, unknown keys are ignored, ``null`` leaves a field empty, and a value of the
wrong type fails the whole answer. See https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

import json
from typing import Any, Final, TypeVar

import orjson
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from rotary.protocol import json_depth

RAW_FIELDS: Final = frozenset({"data", "info", "meta"})
"""Bytes fields that travel as raw JSON; Centrifugo types them ``Raw``."""

ALWAYS_WRITTEN: Final = frozenset({"user"})
"""Fields Centrifugo writes even when empty (``json:"user"`` without omitempty)."""

_INTEGER_TYPES: Final = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    }
)

M = TypeVar("M", bound=Message)


class MalformedAnswer(ValueError):
    """The backend's body is not JSON of the expected shape."""


class UnencodableRequest(ValueError):
    """A raw field of the request holds bytes that are not JSON (a Protobuf client's binary data
    sent to a proxy without ``binary_encoding``): Centrifugo's encoding/json refuses to write such
    a body, so the request is never sent."""


def encode_request(message: Message) -> bytes:
    """One request as the JSON body Centrifugo posts; UnencodableRequest when it cannot be written."""
    return orjson.dumps(_to_json(message))


def _to_json(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.name in ALWAYS_WRITTEN:
            out[field.name] = value
        elif _is_map(field):
            if value:
                out[field.name] = dict(value)
        elif field.is_repeated:
            if value:
                out[field.name] = list(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if message.HasField(field.name):
                out[field.name] = _to_json(value)
        elif value and field.name in RAW_FIELDS:
            _check_json(field.name, value)
            out[field.name] = orjson.Fragment(value)
        elif value:
            out[field.name] = value
    return out


def _check_json(name: str, value: bytes) -> None:
    """Go's encoding/json validates a raw value it writes: any JSON up to its nesting limit."""
    try:
        json_depth.loads(value, json_depth.GO_MAX_DEPTH)
    except ValueError as exc:  # InvalidJson and JsonDepthError
        raise UnencodableRequest(f"{name} is not JSON: {exc}") from None


def decode_response(body: bytes, message_type: type[M]) -> M:
    """One answer body as a message; MalformedAnswer when it is not what Centrifugo would accept."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # Go reads integers beyond 64 bits and deeper nesting than orjson
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise MalformedAnswer(f"invalid JSON: {exc}") from None
    message = message_type()
    if document is not None:
        _fill(message, document)
    return message


def _fill(message: Message, document: Any) -> None:
    if not isinstance(document, dict):
        raise MalformedAnswer(f"{message.DESCRIPTOR.name}: expected an object")
    fields = _fields_by_folded_name(message.DESCRIPTOR)
    for key, value in document.items():
        field = fields.get(key.casefold())
        if field is None or (value is None and field.name not in RAW_FIELDS):
            continue
        _set(message, field, value)


def _fields_by_folded_name(descriptor: Any) -> dict[str, Any]:
    return {field.name.casefold(): field for field in descriptor.fields}


def _set(message: Message, field: Any, value: Any) -> None:
    name = field.name
    if _is_map(field):
        if not isinstance(value, dict):
            raise MalformedAnswer(f"{name}: expected an object")
        target = getattr(message, name)
        value_field = field.message_type.fields_by_name["value"]
        for key, item in value.items():
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                if item is not None:
                    _fill(target[key], item)
            else:
                target[key] = _scalar(value_field, item)
    elif field.is_repeated:
        if not isinstance(value, list):
            raise MalformedAnswer(f"{name}: expected an array")
        repeated = getattr(message, name)
        for item in value:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                _fill(repeated.add(), item)
            else:
                repeated.append(_scalar(field, item))
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        sub = getattr(message, name)
        sub.SetInParent()
        _fill(sub, value)
    else:
        setattr(message, name, _scalar(field, value))


def _scalar(field: Any, value: Any) -> Any:
    """A JSON value for a scalar field, with encoding/json's type rules."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_BYTES and field.name in RAW_FIELDS:
        return orjson.dumps(value) if _orjson_safe(value) else json.dumps(value).encode()
    if kind == FieldDescriptor.TYPE_STRING and isinstance(value, str):
        return value
    if kind == FieldDescriptor.TYPE_BOOL and isinstance(value, bool):
        return value
    if kind in _INTEGER_TYPES and isinstance(value, int) and not isinstance(value, bool):
        try:
            _check_range(field, value)
        except ValueError as exc:
            raise MalformedAnswer(f"{field.name}: {exc}") from None
        return value
    raise MalformedAnswer(f"{field.name}: unexpected value {value!r}")


def _check_range(field: Any, value: int) -> None:
    bits = 32 if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32) else 64
    unsigned = field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64)
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= value <= high:
        raise ValueError(f"{value} out of range")


def _orjson_safe(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


def _is_map(field: Any) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
        and field.is_repeated
    )
