"""Protocol messages <-> JSON-ready Python values, driven by the message descriptors.

One generic walk each way serves every message of client.proto, so a new field needs no code here.
The rules are Centrifugo's JSON flavour of proto3 (https://centrifugal.dev/docs/transports/client_protocol):
keys are the proto field names, zero values are omitted (but for ALWAYS_WRITTEN), all integers are
JSON numbers, and ``bytes`` fields carry the application's payload as raw embedded JSON rather
than base64, so a publication's ``data`` goes out exactly as it was published.

Decoding is lenient where the official SDKs differ (lowerCamel keys, 64-bit integers as numeric
strings, ``null`` for unset, unknown keys) and strict about types: anything else raises
:class:`~rotary.protocol.codec.ProtocolError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from rotary.protocol import json_depth, pb
from rotary.protocol.codec import ProtocolError
from rotary.protocol.go_json_keys import fold_segmentio

Jsonable = Any
Converter = Callable[[Any], Jsonable]
Setter = Callable[[Message, Any, int], None]
"""Sets one field of a message from its JSON value; the int is the message's nesting depth."""

_INT_RANGES: Final[Mapping[int, tuple[int, int]]] = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_WIDE_INTS: Final = frozenset(t for t, (_, high) in _INT_RANGES.items() if high > 2**32)
_NUMERIC_STRING: Final = re.compile(r"-?[0-9]{1,20}")

MAX_NESTED_MESSAGES: Final = 101
"""Messages one JSON message may nest, itself included: what upb's Protobuf decoder accepts, so both
encodings accept the same messages (only FilterNode trees nest without a bound in client.proto),
and filling never recurses deeply enough to exhaust Python's stack."""


def raw_json(value: bytes) -> orjson.Fragment:
    """Splice stored JSON bytes into the output without parsing them.

    A raw newline would split the message inside a newline-delimited frame; valid JSON has newlines
    only as whitespace between tokens, so dropping them leaves the payload's meaning intact.
    """
    return orjson.Fragment(value.replace(b"\n", b""))  # the same object when there is none


# --- encoding: message -> dict of JSON-ready values ------------------------------------------------


ALWAYS_WRITTEN: Final[Mapping[str, tuple[str, ...]]] = {
    pb.ClientInfo.DESCRIPTOR.full_name: ("user", "client"),
    pb.PresenceResult.DESCRIPTOR.full_name: ("presence",),
    pb.PresenceStatsResult.DESCRIPTOR.full_name: ("num_clients", "num_users"),
    pb.HistoryResult.DESCRIPTOR.full_name: ("publications", "epoch", "offset"),
}
"""Fields Centrifugo's JSON encoder (easyjson over client.proto, no ``omitempty``) writes even at
their zero value: an anonymous joiner is ``"user":""``, an empty history ``"publications":[]`` and
``"offset":0``, so a client reading them never finds them missing. They are the leading fields of
their messages, so writing them first keeps field-number order."""


def to_jsonable(message: Message) -> dict[str, Jsonable]:
    """The message as a dict that ``orjson.dumps`` renders in Centrifugo's JSON form."""
    tables = _ENCODERS_BY_TYPE.get(type(message))
    if tables is None:
        descriptor = message.DESCRIPTOR
        tables = _ENCODERS_BY_TYPE[type(message)] = (_encoders(descriptor), _always_written(descriptor))
    table, always = tables
    out: dict[str, Jsonable] = {name: zero() for name, zero in always} if always else {}
    for field, value in message.ListFields():  # set fields only, in field-number order
        name, convert = table[field.number]
        out[name] = convert(value)
    return out


_ENCODERS_BY_TYPE: dict[type[Message], tuple[dict[int, tuple[str, Converter]], AlwaysWritten]] = {}
"""``_encoders`` and ``_always_written`` of a message class: ``type(message)`` is a cheaper key than
its DESCRIPTOR, which an instance looks up among its fields first."""


def _identity(value: Any) -> Any:
    return value


def _element_encoder(field: FieldDescriptor) -> Converter:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return to_jsonable
    if field.type == FieldDescriptor.TYPE_BYTES:
        return raw_json
    return _identity


def _field_encoder(field: FieldDescriptor) -> Converter:
    """Maps are written with sorted keys so that equal messages always give equal bytes."""
    if _is_map(field):
        convert_value = _element_encoder(_map_value(field))
        return lambda entries: {k: convert_value(v) for k, v in sorted(entries.items())}
    convert = _element_encoder(field)
    if _is_repeated(field):
        return lambda items: [convert(item) for item in items]
    return convert


AlwaysWritten = tuple[tuple[str, Callable[[], Jsonable]], ...]


@functools.cache
def _always_written(descriptor: Descriptor) -> AlwaysWritten:
    """The ALWAYS_WRITTEN fields of ``descriptor``, each with a maker of its zero value."""
    out: list[tuple[str, Callable[[], Jsonable]]] = []
    for name in ALWAYS_WRITTEN.get(descriptor.full_name, ()):
        field = descriptor.fields_by_name[name]
        if _is_map(field):
            out.append((name, dict))
        elif _is_repeated(field):
            out.append((name, list))
        else:
            out.append((name, functools.partial(_identity, field.default_value)))
    return tuple(out)


@functools.cache
def _encoders(descriptor: Descriptor) -> dict[int, tuple[str, Converter]]:
    return {field.number: (field.name, _field_encoder(field)) for field in descriptor.fields}


# --- decoding: parsed JSON object -> message -------------------------------------------------------


def fill(message: Message, obj: Any, depth: int = 1) -> None:
    """Set the fields of ``message`` from a parsed JSON object; ``null`` values leave fields unset.

    ``depth`` counts the messages from the outermost one down to ``message``.
    """
    if type(obj) is not dict:
        raise ProtocolError(f"{message.DESCRIPTOR.name}: expected an object")
    if depth > MAX_NESTED_MESSAGES:
        raise ProtocolError(f"messages nested deeper than {MAX_NESTED_MESSAGES}")
    setters = _SETTERS_BY_TYPE.get(type(message))
    if setters is None:
        setters = _SETTERS_BY_TYPE[type(message)] = _setters(message.DESCRIPTOR)
    for key, value in obj.items():
        setter = setters.get(key)
        if setter is None:
            setter = setters.get(fold_segmentio(key))  # "CONNECT" is a connect, as in Centrifugo
        if setter is not None and value is not None:
            setter(message, value, depth)


def _parse_string(value: Any) -> str:
    if type(value) is not str:
        raise ProtocolError("expected a string")
    return value


def _parse_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ProtocolError("expected a boolean")
    return value


def _parse_raw(value: Any) -> bytes:
    """The payload as compact JSON again; Centrifugo keeps it raw, so any depth is accepted."""
    return json_depth.dumps(value)


def _int_parser(field_type: int) -> Callable[[Any], int]:
    low, high = _INT_RANGES[field_type]
    accepts_string = field_type in _WIDE_INTS

    def parse(value: Any) -> int:
        if accepts_string and type(value) is str and _NUMERIC_STRING.fullmatch(value):
            value = int(value)
        if type(value) is not int or not low <= value <= high:
            raise ProtocolError("expected an integer in range")
        return value

    return parse


def _scalar_parser(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.type in _INT_RANGES:
        return _int_parser(field.type)
    simple: dict[int, Callable[[Any], Any]] = {
        FieldDescriptor.TYPE_STRING: _parse_string,
        FieldDescriptor.TYPE_BOOL: _parse_bool,
        FieldDescriptor.TYPE_BYTES: _parse_raw,
    }
    return simple[field.type]


def _expect_list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise ProtocolError("expected an array")
    return value


def _expect_dict(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise ProtocolError("expected an object")
    return value


def _map_setter(field: FieldDescriptor) -> Setter:
    """Map keys of client.proto are all strings, which is what JSON object keys are."""
    name = field.name
    value_field = _map_value(field)
    if value_field.type == FieldDescriptor.TYPE_MESSAGE:

        def set_messages(message: Message, value: Any, depth: int) -> None:
            entries = getattr(message, name)
            for key, item in _expect_dict(value).items():
                fill(entries[key], item, depth + 1)

        return set_messages
    parse = _scalar_parser(value_field)

    def set_scalars(message: Message, value: Any, depth: int) -> None:
        getattr(message, name).update({k: parse(v) for k, v in _expect_dict(value).items()})

    return set_scalars


def _repeated_setter(field: FieldDescriptor) -> Setter:
    name = field.name
    if field.type == FieldDescriptor.TYPE_MESSAGE:

        def add_messages(message: Message, value: Any, depth: int) -> None:
            items = getattr(message, name)
            for item in _expect_list(value):
                fill(items.add(), item, depth + 1)

        return add_messages
    parse = _scalar_parser(field)

    def add_scalars(message: Message, value: Any, depth: int) -> None:
        getattr(message, name).extend([parse(item) for item in _expect_list(value)])

    return add_scalars


def _singular_setter(field: FieldDescriptor) -> Setter:
    name = field.name
    if field.type == FieldDescriptor.TYPE_MESSAGE:

        def set_message(message: Message, value: Any, depth: int) -> None:
            child = getattr(message, name)
            # an empty object still marks the field present: {"publish":{}}; the method read from
            # the class, as an instance's attributes are first looked up among its fields
            type(child).SetInParent(child)
            fill(child, value, depth + 1)

        return set_message
    parse = _scalar_parser(field)

    def set_scalar(message: Message, value: Any, depth: int) -> None:
        setattr(message, name, parse(value))

    return set_scalar


def _field_setter(field: FieldDescriptor) -> Setter:
    if _is_map(field):
        return _map_setter(field)
    if _is_repeated(field):
        return _repeated_setter(field)
    return _singular_setter(field)


_SETTERS_BY_TYPE: dict[type[Message], dict[str, Setter]] = {}
"""``_setters`` of a message class: ``type(message)`` is a cheaper key than its DESCRIPTOR, which
an instance looks up among its fields first."""


@functools.cache
def _setters(descriptor: Descriptor) -> dict[str, Setter]:
    setters: dict[str, Setter] = {}
    for field in descriptor.fields:
        setter = _field_setter(field)
        setters[field.json_name] = setter
        setters[field.name] = setter
    return setters


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _map_value(field: FieldDescriptor) -> FieldDescriptor:
    """The value field of a map's synthetic entry message."""
    assert field.message_type is not None
    value: FieldDescriptor = field.message_type.fields_by_name["value"]
    return value


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return field.is_repeated and entry is not None and bool(entry.GetOptions().map_entry)
