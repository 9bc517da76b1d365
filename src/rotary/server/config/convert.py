"""Turn a parsed config tree (plain dicts, lists, strings) into the frozen schema dataclasses.

Decoding is as forgiving as Centrifugo's: strings are accepted for numbers, booleans and durations
(env and flags only have strings), a lone value is accepted where a list is expected, and a number
given for a duration counts nanoseconds. Every problem and unknown key is collected with its path
instead of stopping at the first one. String maps (proxy ``static_headers`` and ``static_metadata``,
NATS ``channel_replacements``) take ``${CENTRIFUGO_VAR_NAME}`` from the environment in their values, as
Centrifugo's MapStringString does, so secrets can stay out of the file; a missing variable is an error.
See https://centrifugal.dev/docs/server/configuration
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rotary.server.config.durations import parse_duration
from rotary.server.config.fields import (
    Kind,
    check_of,
    is_mapping,
    is_section,
    item_type,
    kind_of,
    optional_of,
    schema_fields,
)

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class Invalid(ValueError):
    """A value that cannot become the field's type; the message says what was expected."""


CUSTOM_VARIABLE = re.compile(r"\$\{(CENTRIFUGO_VAR_[^}]+)}")
"""A reference to an environment variable inside a string map value."""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)
    environ: Mapping[str, str] = field(default_factory=dict)
    """Where ``${CENTRIFUGO_VAR_...}`` references in string maps are looked up."""


def join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def build(cls: type, raw: Any, path: str, report: Report) -> Any:
    """An instance of schema dataclass ``cls`` from ``raw``; defaults fill what raw lacks."""
    if not isinstance(raw, Mapping):
        report.problems.append(f"{path or 'config'}: must be an object, got {_kind(raw)}")
        return cls()
    known = {f.name for f, _ in schema_fields(cls)}
    report.unknown_keys.extend(join(path, str(k)) for k in raw if k not in known)
    values: dict[str, Any] = {}
    for f, tp in schema_fields(cls):
        if f.name not in raw:
            continue
        key_path = join(path, f.name)
        try:
            value = _coerce(raw[f.name], tp, kind_of(f), key_path, report)
        except Invalid as exc:
            report.problems.append(f"{key_path}: {exc}")
            continue
        check = check_of(f)
        problem = check(value) if check else None
        if problem:
            report.problems.append(f"{key_path}: {problem} (got {value!r})")
            continue
        values[f.name] = value
    return cls(**values)


def _coerce(value: Any, tp: Any, kind: Kind, path: str, report: Report) -> Any:
    if kind is Kind.DURATION:
        return to_duration(value)
    if kind is Kind.PASSTHROUGH:
        return dict(_object(value))
    if is_section(tp):
        return build(tp, value, path, report)
    inner = optional_of(tp)
    if inner is not None:
        return None if value is None else build(inner, value, path, report)
    if is_mapping(tp):
        return expand_variables(to_string_map(value), report.environ)
    element = item_type(tp)
    if element is not None:
        return _tuple(value, element, path, report)
    return SCALARS[tp](value)


def _tuple(value: Any, element: Any, path: str, report: Report) -> tuple[Any, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if is_section(element):
        return tuple(build(element, item, f"{path}[{i}]", report) for i, item in enumerate(items))
    return tuple(SCALARS[element](item) for item in items)


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value in _TRUE | _FALSE:
        return value in _TRUE
    raise Invalid(f"expected a boolean, got {value!r}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            pass
    raise Invalid(f"expected an integer, got {value!r}")


def to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Invalid(f"expected a string, got {_kind(value)}")


def to_duration(value: Any) -> float:
    """Seconds; strings are Go durations, bare numbers are nanoseconds as in Centrifugo."""
    if isinstance(value, bool):
        raise Invalid(f'expected a duration like "1s", got {value!r}')
    if isinstance(value, (int, float)):
        return value / 1e9
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    raise Invalid(f'expected a duration like "1s", got {_kind(value)}')


def to_string_map(value: Any) -> dict[str, str]:
    """A string map given as an object or as a list of {"key": ..., "value": ...} items."""
    if isinstance(value, list):
        try:
            return {to_str(item["key"]): to_str(item["value"]) for item in value}
        except (KeyError, TypeError):
            raise Invalid('expected a list of {"key": ..., "value": ...} objects') from None
    return {str(k): to_str(v) for k, v in _object(value).items()}


def expand_variables(values: dict[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Each ``${CENTRIFUGO_VAR_X}`` replaced by that variable (set and empty is fine, unset is not)."""
    for value in values.values():
        for name in CUSTOM_VARIABLE.findall(value):
            if name not in environ:
                raise Invalid(f'environment variable "{name}" not found')
    return {key: CUSTOM_VARIABLE.sub(lambda m: environ[m.group(1)], value) for key, value in values.items()}


def _object(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise Invalid(f"must be an object, got {_kind(value)}")


def _kind(value: Any) -> str:
    return type(value).__name__


SCALARS: dict[Any, Callable[[Any], Any]] = {bool: to_bool, int: to_int, str: to_str, float: to_duration}
