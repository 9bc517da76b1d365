"""JSON <-> the API's request and result dataclasses, with Centrifugo's decoding and encoding rules.

Decoding follows the Go JSON decoder Centrifugo uses: keys match field names case-insensitively,
unknown keys are ignored, ``null`` leaves a field at its zero value, and a value of the wrong type
(a string for a bool, a fraction for an integer, a negative offset) rejects the whole request.
``bytes`` fields take any JSON value and keep it as raw JSON bytes, numbers written as they were
sent (Go keeps a ``json.RawMessage`` verbatim: ``1e5`` stays ``1e5`` and an integer of any size stays
exact). Encoding writes only non-zero fields, except those the schema marks as kept. See https://centrifugal.dev/docs/server/server_api.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from rotary.protocol import json_depth
from rotary.protocol.go_json_keys import fold_encoding_json
from rotary.server.api.schema import BATCH_METHODS, METHODS, ApiError, BatchReply, Command, Outcome

LARGE_BODY: Final = 1 << 16
"""Bytes from which the HTTP adapters decode a body, and encode its reply, in a worker thread: a
batch of 85k commands takes seconds of CPU either way, and in a thread the event loop still gets the
GIL every few milliseconds (Python's switch interval) for pings, fan-out and other requests."""


class MalformedRequest(Exception):
    """The body is not JSON of the method's request shape; HTTP answers 400."""


class UnencodableResult(Exception):
    """A raw field of a result holds bytes that are not JSON (binary data read over the JSON API)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    """How one request field is decoded, worked out once per dataclass."""

    name: str
    convert: Callable[[Any, str], Any]
    """The JSON value and its path (for error messages) -> the field's value."""
    takes_null: bool
    """A raw (bytes) field keeps ``null`` as raw JSON; any other field leaves its zero value."""


# --- decoding --------------------------------------------------------------------------------------


class RawNumber:
    """A JSON number kept as written: a fraction or exponent, or an integer no 64-bit type holds.

    Not a dataclass: orjson would write one as an object instead of asking ``default``.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def integer(self) -> int | None:
        """Its value when it is written as an integer, else None."""
        return int(self.text) if self.text.lstrip("-").isdigit() else None


def parse_number(literal: str) -> int | RawNumber:
    """Integers that round-trip through a 64-bit integer as themselves, any other number as text."""
    if any(c in literal for c in ".eE"):
        return RawNumber(literal)
    value = int(literal)
    if str(value) == literal and -(2**63) <= value < 2**64:
        return value
    return RawNumber(literal)


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(
    parse_float=parse_number, parse_int=parse_number, parse_constant=reject_constant
)
"""The standard library's decoder, whose number hooks keep each number's text for raw fields."""


_NUMBER_SHAPES: Final = bytes.maketrans(b"123456789eE", b"000000000..")
"""Every digit as 0 and every exponent mark as a fraction's point: one search then finds both."""
_LONG_INTEGER: Final = b"0" * 19


def _orjson_keeps_numbers(body: bytes) -> bool:
    """False when the body may hold a number orjson reads other than as written: a fraction or an
    exponent (a float, whose text is lost), ``-0`` (read as 0), or an integer of 19 digits or more
    (beyond 64 bits it becomes a float). The same bytes inside a string answer False too, and the
    exact parser then reads the body. ``bytes.find``, not ``in`` (on Python 3.11 ``in`` formats a
    discarded TypeError first) nor a regular expression (its scan costs more than orjson's parse)."""
    if body.find(b"-0") >= 0:
        return False
    shapes = body.translate(_NUMBER_SHAPES)
    return shapes.find(b"0.") < 0 and shapes.find(_LONG_INTEGER) < 0


def parse_json(body: bytes) -> Any:
    """The body's value; like Go's encoding/json in Centrifugo, at most 10000 levels deep.

    orjson reads most bodies (a publish with small integers and strings) at a fifth of the cost of
    the standard library's scanner with its number hooks, and gives the same value there: the same
    strings, integers and last-of-duplicate keys. Whatever it refuses (invalid JSON, an escaped lone
    surrogate, more than 1024 levels) and every body that may hold a number it would not keep as
    written goes to the exact parser, which decides as before, with the same error messages.
    """
    if _orjson_keeps_numbers(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return _parse_exact(body)


def _parse_exact(body: bytes) -> Any:
    """The body's value with every number that no 64-bit integer holds kept as a RawNumber."""
    try:
        try:
            return _DECODER.decode(body.decode())
        except RecursionError:  # deeper than the standard library's scanner reads
            return json_depth.loads(body, json_depth.GO_MAX_DEPTH)
    except UnicodeDecodeError:
        raise MalformedRequest("body is not UTF-8") from None
    except json_depth.JsonDepthError as exc:
        raise MalformedRequest(f"JSON {exc}") from None
    except ValueError as exc:  # json_depth.InvalidJson too
        raise MalformedRequest(f"invalid JSON: {exc}") from None


def decode(cls: type[Any], value: Any, path: str = "") -> Any:
    """An instance of the request dataclass ``cls`` from a parsed JSON value."""
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise MalformedRequest(f"{path or 'request'}: expected an object, got {_kind(value)}")
    fields = _fields(cls)
    values: dict[str, Any] = {}
    for key, item in value.items():
        spec = fields.get(key) or fields.get(fold_encoding_json(key))
        if spec is None or (item is None and not spec.takes_null):
            continue
        values[spec.name] = spec.convert(item, path + spec.name)
    return cls(**values)


_FIELD_TABLES: dict[type[Any], dict[str, _Field]] = {}


def _fields(cls: type[Any]) -> dict[str, _Field]:
    """Fields by name; every name is lower case, so a lower-cased key finds its field too."""
    table = _FIELD_TABLES.get(cls)
    if table is None:
        hints = typing.get_type_hints(cls)
        table = {
            f.name: _Field(
                f.name, _field_converter(hints[f.name], f.metadata.get("range")), hints[f.name] is bytes
            )
            for f in dataclasses.fields(cls)
        }
        _FIELD_TABLES[cls] = table
    return table


def _field_converter(hint: Any, bounds: tuple[int, int] | None) -> Callable[[Any, str], Any]:
    if hint is int:
        return lambda value, path: _integer(value, bounds, path)
    return _converter(hint)


def _expect(kind: type, name: str) -> Callable[[Any, str], Any]:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise MalformedRequest(f"{path}: expected {name}, got {_kind(value)}")
        return value

    return check


def _integer(value: Any, bounds: tuple[int, int] | None, path: str) -> int:
    if isinstance(value, RawNumber) and value.integer() is not None:
        value = value.integer()
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedRequest(f"{path}: expected an integer, got {_kind(value)}")
    low, high = bounds or (-(2**63), 2**63 - 1)
    if not low <= value <= high:
        raise MalformedRequest(f"{path}: {value} is out of range [{low}, {high}]")
    return value


def dump_raw(value: Any) -> bytes:
    """A parsed JSON value back to compact JSON bytes, each RawNumber as written, at any depth."""
    try:
        return orjson.dumps(value, default=_number_text)
    except orjson.JSONEncodeError:  # deeper than orjson writes
        return json_depth.dumps(_fragments(value))


def _number_text(value: Any) -> orjson.Fragment:
    if isinstance(value, RawNumber):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _fragments(value: Any) -> Any:
    """``value`` with every RawNumber replaced by its Fragment, walked without recursion."""
    if isinstance(value, RawNumber):
        return orjson.Fragment(value.text)
    stack = [value]
    while stack:
        item = stack.pop()
        entries = (
            item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        )
        for key, member in list(entries):
            if isinstance(member, RawNumber):
                item[key] = orjson.Fragment(member.text)
            elif isinstance(member, (dict, list)):
                stack.append(member)
    return value


def _raw(value: Any, path: str) -> bytes:
    return dump_raw(value)


def _string_list(value: Any, path: str) -> list[str]:
    items = _expect(list, "an array")(value, path)
    return [_str_or_empty(item, f"{path}[{i}]") for i, item in enumerate(items)]


def _string_map(value: Any, path: str) -> dict[str, str]:
    items = _expect(dict, "an object")(value, path)
    return {key: _str_or_empty(item, f"{path}.{key}") for key, item in items.items()}


def _str_or_empty(value: Any, path: str) -> str:
    return "" if value is None else str(_expect(str, "a string")(value, path))


def decode_command(value: Any, path: str) -> Command | None:
    """A batch command: the first method (in METHODS order) among its keys; 104 later if none.

    Every known key is decoded, so a malformed one rejects the batch even when another key wins.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedRequest(f"{path}: expected an object, got {_kind(value)}")
    found: dict[str, Any] = {}
    for key, item in value.items():
        name = fold_encoding_json(key)
        if name in BATCH_METHODS and item is not None:
            found[name] = decode(METHODS[name].request, item, f"{path}.{name}.")
    for name in BATCH_METHODS:
        if name in found:
            return Command(name, found[name])
    return Command()


def _commands(value: Any, path: str) -> list[Command | None]:
    items = _expect(list, "an array")(value, path)
    return [decode_command(item, f"{path}[{i}]") for i, item in enumerate(items)]


def _converter(hint: Any) -> Callable[[Any, str], Any]:
    simple = _SIMPLE.get(hint)
    if simple is not None:
        return simple
    if isinstance(hint, types.UnionType):
        (inner,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        return _converter(inner)
    if dataclasses.is_dataclass(hint):
        return lambda value, path: decode(typing.cast(type[Any], hint), value, f"{path}.")
    raise TypeError(f"no JSON decoder for {hint!r}")


_SIMPLE: Final[Mapping[Any, Callable[[Any, str], Any]]] = {
    str: _expect(str, "a string"),
    bool: _expect(bool, "a boolean"),
    bytes: _raw,
    list[str]: _string_list,
    dict[str, str]: _string_map,
    list[Command | None]: _commands,
}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# --- encoding --------------------------------------------------------------------------------------


_PLAIN: Final = frozenset({str, int, bool, float, type(None)})
"""Types a result holds that orjson writes as they are."""


def encode(value: Any) -> Any:
    """A result (or any part of one) as a value ``orjson.dumps`` renders in Centrifugo's shape."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    special = _SPECIAL.get(kind)
    if special is not None:
        return special(value)
    plan = _ENCODING_PLANS.get(kind)
    if plan is not None or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return _encode_fields(value, plan or _encoding_plan(kind))
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return raw_fragment(value)
    return value


_ENCODING_PLANS: dict[type, tuple[tuple[str, bool], ...]] = {}
"""Each result dataclass's fields as (name, written even when zero), read once per type: asking
``dataclasses.fields`` and each field's metadata again cost more than the encoding itself."""


def _encoding_plan(kind: type) -> tuple[tuple[str, bool], ...]:
    plan = tuple((f.name, bool(f.metadata.get("keep"))) for f in dataclasses.fields(kind))
    _ENCODING_PLANS[kind] = plan
    return plan


def _encode_fields(value: Any, plan: tuple[tuple[str, bool], ...]) -> dict[str, Any]:
    """Go's omitempty: zero numbers, empty strings, bytes, lists, maps and absent objects are left
    out (a dataclass instance is always true) unless the field is kept."""
    out: dict[str, Any] = {}
    for name, keep in plan:
        item = getattr(value, name)
        if keep or item:
            out[name] = encode(item)
    return out


def raw_fragment(data: bytes) -> orjson.Fragment:
    """Stored raw JSON spliced into the output; bytes that are not JSON cannot be sent here."""
    try:
        json_depth.loads(data)
    except json_depth.InvalidJson:
        raise UnencodableResult("raw field does not hold JSON") from None
    return orjson.Fragment(data)


def encode_error(error: ApiError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message}


def encode_outcome(outcome: Outcome) -> dict[str, Any]:
    if outcome.error is not None:
        return {"error": encode_error(outcome.error)}
    return {"result": encode(outcome.result)}


def _encode_batch_reply(reply: BatchReply) -> dict[str, Any]:
    if reply.outcome.error is not None:
        return {"error": encode_error(reply.outcome.error)}
    return {reply.method: encode(reply.outcome.result)}


_SPECIAL: Final[Mapping[type, Callable[[Any], Any]]] = {
    Outcome: encode_outcome,
    BatchReply: _encode_batch_reply,
    ApiError: encode_error,
}
