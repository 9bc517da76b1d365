"""Field declarations for the config schema: each field carries a default, a doc and maybe a check.

Everything else a key needs (its env name, flag name, file type, defaultconfig output) is derived
from the field path and the annotation, so a key is spelled once.
See https://centrifugal.dev/docs/server/configuration
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from typing import Any

from rotary.server.config.durations import parse_duration

Check = Callable[[Any], str | None]
"""Returns a problem description for a bad value, None when the value is fine."""


class Kind(enum.Enum):
    """How a value is spelled in files and env, when its Python type alone does not say it."""

    PLAIN = "plain"
    DURATION = "duration"
    PASSTHROUGH = "passthrough"


def opt(default: Any, doc: str = "", *, check: Check | None = None) -> Any:
    """A scalar or tuple option."""
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check, "kind": Kind.PLAIN})


def dur(default: str, doc: str = "", *, check: Check | None = None) -> Any:
    """A duration option: float seconds in Python, a Go duration string in files and env."""
    meta = {"doc": doc, "check": check, "kind": Kind.DURATION}
    return dataclasses.field(default=parse_duration(default), metadata=meta)


def section(factory: Callable[[], Any], doc: str = "") -> Any:
    """A nested section (a dataclass) or a mutable-looking default such as an empty mapping."""
    meta = {"doc": doc, "check": None, "kind": Kind.PLAIN}
    return dataclasses.field(default_factory=factory, metadata=meta)


def optional_section(doc: str = "") -> Any:
    """A section annotated ``X | None`` that is None until a file or env variable sets a key of it.

    This is Centrifugo's pointer-to-struct with ``omitempty``: the dumps leave it out while it is
    unset, yet its keys are known, so env variables list and set them one by one.
    """
    return dataclasses.field(default=None, metadata={"doc": doc, "check": None, "kind": Kind.PLAIN})


def passthrough(doc: str = "") -> Any:
    """A sub-tree kept as parsed (a mapping), for integrations rotary does not implement."""
    meta = {"doc": doc, "check": None, "kind": Kind.PASSTHROUGH}
    return dataclasses.field(default_factory=dict, metadata=meta)


def kind_of(field: dataclasses.Field[Any]) -> Kind:
    kind: Kind = field.metadata.get("kind", Kind.PLAIN)
    return kind


def doc_of(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata.get("doc", ""))


def check_of(field: dataclasses.Field[Any]) -> Check | None:
    check: Check | None = field.metadata.get("check")
    return check


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of a schema dataclass (the modules use postponed annotations)."""
    return typing.get_type_hints(cls)


def schema_fields(cls: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """Each field of a schema dataclass with its resolved type."""
    return _typed_fields(cls)


@functools.cache
def _typed_fields(cls: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """Found once per class: the schema never changes, and every config load walks it."""
    types = field_types(cls)
    return tuple((field, types[field.name]) for field in dataclasses.fields(cls))


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def optional_of(tp: Any) -> Any:
    """The section type X of an optional section ``X | None``, or None for any other type."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return inner if is_section(inner) else None
    return None


def item_type(tp: Any) -> Any:
    """The element type of ``tuple[X, ...]``, or None when tp is not a homogeneous tuple."""
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def is_mapping(tp: Any) -> bool:
    return typing.get_origin(tp) is dict or tp is dict


def doc_at(cls: type, path: str) -> str:
    """The doc of the key at a dotted path below the schema dataclass ``cls``."""
    head, _, rest = path.partition(".")
    field = next(f for f in dataclasses.fields(cls) if f.name == head)
    return doc_of(field) if not rest else doc_at(field_types(cls)[head], rest)
