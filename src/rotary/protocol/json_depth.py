"""JSON of any nesting depth in and out, without recursion.

orjson parses at most 1024 levels and serializes at most 255; Centrifugo (Go) takes much deeper
payloads: the client protocol keeps publication data as raw bytes whatever its depth, and the server
API and token claims (Go's encoding/json) accept up to 10000 levels. So rotary parses with orjson
first and, only when orjson refuses the depth, falls back to an iterative parser here that builds
the outer levels as Python values and keeps anything deeper as an ``orjson.Fragment`` of its exact
source bytes. Serializing does the same: orjson first, an explicit-stack writer when the value is too
deep for it. See https://centrifugal.dev/docs/transports/client_protocol for the raw JSON payloads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

GO_MAX_DEPTH: Final = 10000
"""Nesting levels Go's encoding/json accepts (the server API, token claims); one more is refused."""

KEPT_DEPTH: Final = 128
"""Levels the fallback parser builds as Python values; deeper containers stay raw Fragments. Below
orjson's serializing limit, so what it returns can be written out again by orjson."""

_ORJSON_DEPTH_ERROR: Final = "depth limit exceeded"
_SPACE: Final = re.compile(rb"[ \t\n\r]*")
_SCALAR: Final = re.compile(
    rb'"(?:[^"\\\x00-\x1f]|\\.)*"'
    rb"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
    rb"|true|false|null"
)
_INTEGER: Final = re.compile(rb"-?[0-9]+")
_LIST_END: Final = ord("]")
_OBJECT_END: Final = ord("}")
_CLOSERS: Final = {ord("["): _LIST_END, ord("{"): _OBJECT_END}
_COMMA: Final = ord(",")
_COLON: Final = ord(":")
_QUOTE: Final = ord('"')


class JsonDepthError(ValueError):
    """The document is nested deeper than the caller's bound."""


class InvalidJson(ValueError):
    """The document is not JSON."""


def loads(data: bytes, max_depth: int | None = None) -> Any:
    """The value of one JSON document; InvalidJson or JsonDepthError (deeper than ``max_depth``)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not str(exc).startswith(_ORJSON_DEPTH_ERROR):
            raise InvalidJson(str(exc)) from None
    value, end = _parse(data, 0, max_depth)
    if _skip_space(data, end) != len(data):
        raise InvalidJson(f"extra data at byte {end}")
    return value


def loads_exact(data: bytes, max_depth: int | None = None) -> Any:
    """Like ``loads``, but every number keeps the way it was written: an integer that a 64-bit type
    holds is an ``int``, any other number (a fraction, an exponent, a bigger integer) an
    ``orjson.Fragment`` of its text, which both writers copy as is. Go keeps raw payloads as bytes,
    so Centrifugo delivers ``1e5``, ``1.50`` or a 30-digit integer exactly as published."""
    value = loads(data, max_depth)  # validates (UTF-8, surrogates) and reads any depth
    if not isinstance(value, (dict, list)):
        return _exact_number(data.decode().strip()) if isinstance(value, (int, float)) else value
    try:
        return _EXACT_DECODER.decode(data.decode())
    except RecursionError:  # deeper than the standard scanner reads: integers stay exact, fractions
        return value  # and exponents are floats there (only past about a thousand levels)


def _exact_number(literal: str) -> Any:
    if _INTEGER.fullmatch(literal.encode()):
        number = int(literal)
        if -(2**63) <= number < 2**64 and str(number) == literal:
            return number
    return orjson.Fragment(literal)


_EXACT_DECODER: Final = json.JSONDecoder(parse_float=_exact_number, parse_int=_exact_number)


def loads_sequence(data: bytes, max_depth: int | None = None) -> list[Any]:
    """Every JSON value of ``data``, in order, separated by any whitespace (a JSON text stream)."""
    values: list[Any] = []
    position = _skip_space(data, 0)
    while position < len(data):
        value, position = _parse(data, position, max_depth)
        values.append(value)
        position = _skip_space(data, position)
    return values


@dataclass(slots=True)
class _Open:
    """A container being read: its closing byte, what is built of it, where it starts."""

    closer: int
    built: list[Any] | dict[str, Any] | None
    """None above KEPT_DEPTH: the container is only checked, then kept as a Fragment."""
    start: int
    key: str = ""
    """In an object, the key whose value comes next."""


def _parse(data: bytes, position: int, max_depth: int | None) -> tuple[Any, int]:
    """The value starting at ``position`` and the index after it, read with an explicit stack."""
    stack: list[_Open] = []
    while True:
        position = _skip_space(data, position)
        if position >= len(data):
            raise InvalidJson("unexpected end of data")
        closer = _CLOSERS.get(data[position])
        if closer is None:
            value, position = _scalar(data, position)
        else:
            if max_depth is not None and len(stack) >= max_depth:
                raise JsonDepthError(f"nested deeper than {max_depth} levels")
            built: list[Any] | dict[str, Any] | None = None
            if len(stack) < KEPT_DEPTH:
                built = [] if closer == _LIST_END else {}
            stack.append(_Open(closer, built, position))
            position = _skip_space(data, position + 1)
            if position >= len(data) or data[position] != closer:
                if closer == _OBJECT_END:
                    position = _read_key(data, position, stack[-1])
                continue  # on to the first member
            value, position = _close(data, position, stack)
        while stack:  # a value is complete: attach it, then a comma or the parent's closer follows
            _attach(stack[-1], value)
            position = _skip_space(data, position)
            if position < len(data) and data[position] == stack[-1].closer:
                value, position = _close(data, position, stack)
                continue
            if position < len(data) and data[position] == _COMMA:
                position += 1
                if stack[-1].closer == _OBJECT_END:
                    position = _read_key(data, position, stack[-1])
                break
            raise InvalidJson(f"expected ',' or a closing bracket at byte {position}")
        else:
            return value, position


def _skip_space(data: bytes, position: int) -> int:
    return _SPACE.match(data, position).end()  # type: ignore[union-attr]


def _close(data: bytes, position: int, stack: list[_Open]) -> tuple[Any, int]:
    """The container closed by the byte at ``position``, and the index after it."""
    done = stack.pop()
    position += 1
    if done.built is not None:
        return done.built, position
    if stack and stack[-1].built is None:  # inside a container that is kept raw as a whole
        return None, position
    return orjson.Fragment(data[done.start : position]), position


def _attach(parent: _Open, value: Any) -> None:
    built = parent.built
    if isinstance(built, list):
        built.append(value)
    elif built is not None:
        built[parent.key] = value


def _read_key(data: bytes, position: int, into: _Open) -> int:
    """Reads ``"key" :`` inside an object; returns the index after the colon."""
    position = _skip_space(data, position)
    token = _SCALAR.match(data, position)
    if token is None or data[position] != _QUOTE:
        raise InvalidJson(f"expected a key at byte {position}")
    into.key = _token_value(token.group())
    position = _skip_space(data, token.end())
    if position >= len(data) or data[position] != _COLON:
        raise InvalidJson(f"expected ':' at byte {position}")
    return position + 1


def _scalar(data: bytes, position: int) -> tuple[Any, int]:
    token = _SCALAR.match(data, position)
    if token is None:
        raise InvalidJson(f"expected a value at byte {position}")
    return _token_value(token.group()), token.end()


def _token_value(token: bytes) -> Any:
    """A string, number or literal token; orjson checks escapes and UTF-8. Integers stay exact."""
    if _INTEGER.fullmatch(token):
        return int(token)
    try:
        return orjson.loads(token)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(str(exc)) from None


def dumps(value: Any) -> bytes:
    """Compact JSON of a parsed value (lists, dicts, scalars, Fragments) of any depth."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        pass
    out = bytearray()
    pending: list[Any] = [value]  # values to write, and bytes already rendered (separators)
    while pending:
        item = pending.pop()
        if type(item) is bytes:
            out += item
        elif type(item) is list:
            pending.append(b"]")
            for index in range(len(item) - 1, -1, -1):
                pending.append(item[index])
                if index:
                    pending.append(b",")
            out += b"["
        elif type(item) is dict:
            pending.append(b"}")
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                name, member = entries[index]
                pending.append(member)
                pending.append(_scalar_bytes(name) + b":")
                if index:
                    pending.append(b",")
            out += b"{"
        else:
            out += _scalar_bytes(item)
    return bytes(out)


def _scalar_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits
        return json.dumps(value).encode()
