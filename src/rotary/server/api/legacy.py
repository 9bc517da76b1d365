"""The legacy single-route API: ``POST <prefix>`` with newline-delimited ``{"id","method","params"}``.

Centrifugo keeps it until v7, and its admin web UI still speaks it. A method is named in any letter
case or by its number (``Command.MethodType``), a missing method means publish (number 0), and the
reply to each command is one line ``{"id"?, "error"?, "result"?}``. A command the route cannot parse
fails the whole request (HTTP 400); params that do not fit their method fail that command alone
(107), missing params included. See https://centrifugal.dev/docs/server/server_api.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any, Final

import orjson

from rotary.protocol import json_depth
from rotary.protocol.go_json_keys import fold_encoding_json
from rotary.server.api.codec import (
    LARGE_BODY,
    MalformedRequest,
    decode,
    encode,
    encode_error,
    parse_number,
    reject_constant,
)
from rotary.server.api.executor import ApiExecutor, in_turn
from rotary.server.api.schema import (
    BAD_REQUEST,
    INT32,
    LEGACY_NUMBERS,
    LEGACY_UNSERVED,
    METHODS,
    NOT_FOUND,
    UINT32,
    ApiError,
)

LEGACY_NAMES: Final[dict[str, str | None]] = {
    **{name.upper(): name for name in LEGACY_NUMBERS.values()},
    **dict.fromkeys(LEGACY_UNSERVED),
}
"""Upper-cased method name -> the METHODS name, or None for one rotary answers with 104."""

_NO_PARAMS: Final = object()


@dataclass(frozen=True, slots=True)
class LegacyCommand:
    id: int
    method: str | None
    """A METHODS name, or None for a method number or name rotary does not serve."""
    params: Any
    """The parsed ``params`` value; a private sentinel when the key is absent."""


def decode_commands(body: bytes) -> list[LegacyCommand]:
    """Every JSON value of the body, in order (separated by newlines or any other whitespace)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise MalformedRequest("body is not UTF-8") from None
    try:
        values = _json_values(text)
    except RecursionError:  # the C scanner's own depth guard: read it again without recursion
        values = _deep_json_values(body)
    return [_command(value) for value in values]


def _json_values(text: str) -> list[Any]:
    """The values with the standard library's scanner, whose number hooks keep each number's text."""
    decoder = json.JSONDecoder(
        parse_float=parse_number, parse_int=parse_number, parse_constant=reject_constant
    )
    values: list[Any] = []
    position = _skip_space(text, 0)
    while position < len(text):
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise MalformedRequest(f"invalid JSON: {exc}") from None
        values.append(value)
        position = _skip_space(text, position)
    return values


def _deep_json_values(body: bytes) -> list[Any]:
    """The values of a body nested too deeply for the scanner; Go's 10000 levels at most."""
    try:
        return json_depth.loads_sequence(body, json_depth.GO_MAX_DEPTH)
    except json_depth.InvalidJson as exc:
        raise MalformedRequest(f"invalid JSON: {exc}") from None
    except json_depth.JsonDepthError as exc:
        raise MalformedRequest(f"JSON {exc}") from None


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _command(value: Any) -> LegacyCommand:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise MalformedRequest("a command must be a JSON object")
    fields = {fold_encoding_json(key): item for key, item in value.items()}
    return LegacyCommand(
        id=_command_id(fields.get("id")),
        method=_method(fields["method"]) if "method" in fields else "publish",
        params=fields.get("params", _NO_PARAMS),
    )


def _command_id(value: Any) -> int:
    if value is None:
        return 0
    low, high = UINT32
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MalformedRequest("id must be an unsigned 32-bit integer")
    return int(value)


def _method(value: Any) -> str | None:
    if isinstance(value, str) and value.upper() in LEGACY_NAMES:
        return LEGACY_NAMES[value.upper()]
    low, high = INT32
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return LEGACY_NUMBERS.get(value)
    raise MalformedRequest(f"unknown method {value!r}")


async def run_command(executor: ApiExecutor, command: LegacyCommand) -> bytes:
    """The reply line of one command."""
    reply: dict[str, Any] = {"id": command.id} if command.id else {}
    try:
        reply["result"] = encode(await _execute(executor, command))
    except ApiError as error:
        reply["error"] = encode_error(error)
    return orjson.dumps(reply)


async def _execute(executor: ApiExecutor, command: LegacyCommand) -> Any:
    if command.method is None:
        raise ApiError(NOT_FOUND)
    if command.params is _NO_PARAMS:
        raise ApiError(BAD_REQUEST)
    try:
        request = decode(METHODS[command.method].request, command.params)
    except MalformedRequest:
        raise ApiError(BAD_REQUEST) from None
    return await executor.execute(command.method, request)


async def run_commands(executor: ApiExecutor, body: bytes) -> bytes:
    """The whole reply body; raises MalformedRequest (HTTP 400) for an empty or unparsable body."""
    if not body:
        raise MalformedRequest("no commands")
    large = len(body) >= LARGE_BODY  # decoded in a worker thread, as the other endpoint does
    commands = await asyncio.to_thread(decode_commands, body) if large else decode_commands(body)
    return b"\n".join(await in_turn([functools.partial(run_command, executor, c) for c in commands]))
