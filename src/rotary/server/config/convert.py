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

import enum
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rotary.server.config.durations import parse_duration
from rotary.server.config.fields import (
    Check,
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


class Shape(enum.Enum):
    """How a field's raw value becomes its Python value (what its kind and annotation say)."""

    DURATION = "duration"
    PASSTHROUGH = "passthrough"
    SECTION = "section"
    OPTIONAL_SECTION = "optional section"
    STRING_MAP = "string map"
    TUPLE = "tuple"
    SCALAR = "scalar"


@dataclass(frozen=True)
class FieldPlan:
    """One field of a schema class, read once: its name, shape, the type its shape works on (the
    section, the tuple's element or the scalar) and its check."""

    name: str
    shape: Shape
    tp: Any
    check: Check | None


@functools.cache
def field_plans(cls: type) -> tuple[tuple[FieldPlan, ...], frozenset[str]]:
    """The plans of a schema class's fields and their names, made once per class: the schema never
    changes, and reading annotations again for every key of every load was most of its time."""
    plans = tuple(_plan(f.name, tp, kind_of(f), check_of(f)) for f, tp in schema_fields(cls))
    return plans, frozenset(plan.name for plan in plans)


def _plan(name: str, tp: Any, kind: Kind, check: Check | None) -> FieldPlan:
    if kind is Kind.DURATION:
        return FieldPlan(name, Shape.DURATION, tp, check)
    if kind is Kind.PASSTHROUGH:
        return FieldPlan(name, Shape.PASSTHROUGH, tp, check)
    if is_section(tp):
        return FieldPlan(name, Shape.SECTION, tp, check)
    inner = optional_of(tp)
    if inner is not None:
        return FieldPlan(name, Shape.OPTIONAL_SECTION, inner, check)
    if is_mapping(tp):
        return FieldPlan(name, Shape.STRING_MAP, tp, check)
    element = item_type(tp)
    if element is not None:
        return FieldPlan(name, Shape.TUPLE, element, check)
    return FieldPlan(name, Shape.SCALAR, tp, check)


def build(cls: type, raw: Any, path: str, report: Report) -> Any:
    """An instance of schema dataclass ``cls`` from ``raw``; defaults fill what raw lacks."""
    if not isinstance(raw, Mapping):
        report.problems.append(f"{path or 'config'}: must be an object, got {_kind(raw)}")
        return cls()
    plans, known = field_plans(cls)
    report.unknown_keys.extend(join(path, str(k)) for k in raw if k not in known)
    values: dict[str, Any] = {}
    for plan in plans:
        if plan.name not in raw:
            continue
        key_path = join(path, plan.name)
        try:
            value = _coerce(raw[plan.name], plan, key_path, report)
        except Invalid as exc:
            report.problems.append(f"{key_path}: {exc}")
            continue
        problem = plan.check(value) if plan.check else None
        if problem:
            report.problems.append(f"{key_path}: {problem} (got {value!r})")
            continue
        values[plan.name] = value
    return cls(**values)


def _coerce(value: Any, plan: FieldPlan, path: str, report: Report) -> Any:
    shape = plan.shape
    if shape is Shape.SCALAR:
        return SCALARS[plan.tp](value)
    if shape is Shape.DURATION:
        return to_duration(value)
    if shape is Shape.SECTION:
        return build(plan.tp, value, path, report)
    if shape is Shape.TUPLE:
        return _tuple(value, plan.tp, path, report)
    if shape is Shape.OPTIONAL_SECTION:
        return None if value is None else build(plan.tp, value, path, report)
    if shape is Shape.STRING_MAP:
        return expand_variables(to_string_map(value), report.environ)
    return dict(_object(value))


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
