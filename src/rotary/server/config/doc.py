"""The documentation of every config key, generated from the schema, for the ``configdoc`` command.

Each key becomes a record shaped like Centrifugo's (``field``, ``name``, ``type``, ``default``,
``comment``, ``is_complex_type``, ``children``) and the Markdown text follows Centrifugo's layout:
a heading per key (deeper for nested keys), its type and default, its environment variable, its
description. Type names of sections are rotary's own; scalar types, defaults and env names are
Centrifugo's. See https://centrifugal.dev/docs/server/console_commands#configdoc
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rotary.server.config.fields import (
    Kind,
    doc_of,
    is_mapping,
    is_section,
    item_type,
    kind_of,
    optional_of,
    schema_fields,
)
from rotary.server.config.schema import Config

UNDOCUMENTED = "No documentation available."
MAX_HEADING = 6
NAMED_ITEM_LISTS = ("namespaces", "proxies", "consumers")
"""Lists whose items have per-name env variables: Centrifugo's docs name them by substring."""

HIDDEN = frozenset({"broker.redisnats"})
"""Keys Centrifugo keeps out of its docs (``expose:"-"``): the experimental Redis+NATS broker."""

PEM_SUFFIX = "_pem"
SCALAR_TYPES: dict[Any, str] = {str: "string", int: "int", bool: "bool", float: "float64"}
DURATION_UNITS = (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


@dataclass
class FieldDoc:
    field: str
    name: str
    level: int
    type: str
    default: str
    comment: str
    is_complex_type: bool
    children: list[FieldDoc] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Centrifugo's JSON shape: ``children`` left out when empty."""
        out: dict[str, Any] = {
            "field": self.field,
            "name": self.name,
            "go_name": "".join(part.capitalize() for part in self.name.split("_")),
            "level": self.level,
            "type": self.type,
            "default": self.default,
            "comment": self.comment,
            "is_complex_type": self.is_complex_type,
        }
        if self.children:
            out["children"] = [child.as_json() for child in self.children]
        return out


def document(cls: type = Config, parent: str = "", level: int = 1) -> list[FieldDoc]:
    """The records of every key below the schema dataclass ``cls``, in schema order."""
    docs = []
    defaults = cls()
    for f, tp in schema_fields(cls):
        key = f"{parent}.{f.name}" if parent else f.name
        if key in HIDDEN:
            continue
        section = optional_of(tp) or (tp if is_section(tp) else None)
        element = item_type(tp)
        children: list[FieldDoc] = []
        if section is not None and kind_of(f) is Kind.PLAIN:
            children = document(section, key, level + 1)
        elif element is not None and is_section(element):
            children = document(element, f"{key}[]", level + 1)
        docs.append(
            FieldDoc(
                field=key,
                name=f.name,
                level=level,
                type=_type_label(f.name, tp, kind_of(f)),
                default=_default_text(f, tp, getattr(defaults, f.name)),
                comment=doc_of(f),
                is_complex_type=bool(children) or kind_of(f) is Kind.PASSTHROUGH,
                children=children,
            )
        )
    return docs


def _type_label(name: str, tp: Any, kind: Kind) -> str:
    if name.endswith(PEM_SUFFIX) and tp is str:
        return "PEMData"  # text, base64 or a path, as server/pem.py reads it
    if kind is Kind.DURATION:
        return "Duration"
    if kind is Kind.PASSTHROUGH:
        return "map[string]any"
    section = optional_of(tp) or (tp if is_section(tp) else None)
    if section is not None:
        return str(section.__name__)
    if is_mapping(tp):
        return "MapStringString"
    element = item_type(tp)
    if element is not None:
        return "[]" + (element.__name__ if is_section(element) else SCALAR_TYPES[element])
    return SCALAR_TYPES[tp]


def _default_text(f: dataclasses.Field[Any], tp: Any, value: Any) -> str:
    """What Centrifugo's ``default`` tag would say: nothing for zero values and sections, ``[]`` for
    lists of objects, ``{}`` for maps, Go's short duration spelling."""
    if kind_of(f) is Kind.DURATION:
        return short_duration(value) if value else ""
    if kind_of(f) is Kind.PASSTHROUGH:
        return ""
    if is_mapping(tp):
        return "{}"
    element = item_type(tp)
    if element is not None:
        return "[]" if is_section(element) else " ".join(str(item) for item in value)
    if optional_of(tp) is not None or is_section(tp) or not value:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def short_duration(seconds: float) -> str:
    """``60.0`` -> ``1m``: the largest unit that divides the value, as Centrifugo's tags are written."""
    for unit, size in DURATION_UNITS:
        count = seconds / size
        if abs(count - round(count)) < 1e-6 and round(count) != 0:
            return f"{round(count)}{unit}"
    return f"{seconds}s"


def env_name(doc: FieldDoc) -> str:
    """The variable Centrifugo's docs list for a key; empty where none sets it alone."""
    named = any(part in doc.field for part in NAMED_ITEM_LISTS)
    if "[]" not in doc.field:
        if not doc.is_complex_type or named or doc.default == "[]":
            return "CENTRIFUGO_" + doc.field.replace(".", "_").upper()
        return ""
    top_level_item = doc.field.startswith(NAMED_ITEM_LISTS)
    if doc.field.endswith(".name") or not top_level_item or (doc.is_complex_type and doc.default != "[]"):
        return ""
    name = "CENTRIFUGO_" + doc.field.replace("[]", "_<NAME>", 1).replace(".", "_").upper()
    return "" if "[]" in name else name


@dataclass
class MarkdownOptions:
    section: str = ""
    base_level: int = 0
    markdown: bool = True
    """False for the HTML view, which marks sections with ``{...}`` and lists with ``[...]``."""


def markdown(docs: list[FieldDoc], options: MarkdownOptions) -> str:
    """The docs as Centrifugo's ``configdoc --markdown`` prints them."""
    parts: list[str] = []
    _markdown(docs, options, parts)
    return "".join(parts)


def _markdown(docs: list[FieldDoc], options: MarkdownOptions, parts: list[str]) -> None:
    for doc in docs:
        if options.section and not doc.field.startswith(options.section):
            continue
        heading = "#" * min(doc.level + options.base_level, MAX_HEADING)
        kind = f"Type: `{doc.type}` object" if doc.is_complex_type else f"Type: `{doc.type}`"
        if doc.default:
            kind += f". Default: `{doc.default}`"
        env = env_name(doc)
        if env:
            kind += f"\n\nEnv: `{env}`"
        title = f"`{doc.field}`"
        if not options.markdown and doc.is_complex_type:
            title += " `[...]`" if doc.default == "[]" else " `{...}`"
        parts.append(f"{heading} {title}\n\n{kind}\n\n{doc.comment or UNDOCUMENTED}\n\n")
        _markdown(doc.children, options, parts)
