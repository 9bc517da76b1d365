"""Write a Config back out: the full tree for ``defaultconfig`` and the env listing for ``defaultenv``.

Durations come out as Go duration strings, so the output loads in rotary and in Centrifugo alike.
See https://centrifugal.dev/docs/server/console_commands
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import yaml

from rotary.server.config.durations import format_duration
from rotary.server.config.env import NAMED_LISTS, env_suffix, leaves
from rotary.server.config.fields import Kind, is_section, kind_of, optional_of, schema_fields
from rotary.server.config.schema import Config

SUPPORTED_EXTENSIONS = ("json", "toml", "yaml", "yml")


def to_tree(obj: Any, *, unset_as_default: bool = False) -> dict[str, Any]:
    """A schema dataclass as plain dicts, lists and scalars, durations as Go strings.

    An unset optional section is left out, as Centrifugo's ``omitempty`` does, or written with its
    defaults when ``unset_as_default`` (the env listing names its keys all the same).
    """
    tree: dict[str, Any] = {}
    for f, tp in schema_fields(type(obj)):
        value = getattr(obj, f.name)
        inner = optional_of(tp)
        if inner is not None and value is None:
            if not unset_as_default:
                continue
            value = inner()
        if kind_of(f) is Kind.DURATION:
            tree[f.name] = format_duration(value)
        else:
            tree[f.name] = _plain(value, unset_as_default)
    return tree


def _plain(value: Any, unset_as_default: bool) -> Any:
    if is_section(type(value)):
        return to_tree(value, unset_as_default=unset_as_default)
    if isinstance(value, tuple):
        return [_plain(item, unset_as_default) for item in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def extension_of(path: str) -> str:
    return os.path.splitext(path)[1].lstrip(".").lower()


def render(tree: dict[str, Any], extension: str) -> str:
    """The tree as JSON, YAML or TOML text; raises ValueError for other extensions."""
    if extension == "json":
        return json.dumps(tree, indent=2, ensure_ascii=False) + "\n"
    if extension in ("yaml", "yml"):
        return str(yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
    if extension == "toml":
        return "".join(_toml_table(tree, (), header=False))
    choices = ", ".join(SUPPORTED_EXTENSIONS)
    raise ValueError(f"output config file must have one of supported extensions: {choices}")


def _toml_table(table: dict[str, Any], path: tuple[str, ...], header: bool = True) -> Iterator[str]:
    """TOML for one table: its scalars first, then sub-tables and arrays of tables."""
    nested = {k: v for k, v in table.items() if (isinstance(v, dict) and v) or _is_table_list(v)}
    if header:
        yield f"\n[{'.'.join(path)}]\n"
    for key, value in table.items():
        if key not in nested:
            yield f"{key} = {_toml_value(value)}\n"
    for key, value in nested.items():
        if isinstance(value, dict):
            yield from _toml_table(value, (*path, key))
        else:
            for item in value:
                yield f"\n[[{'.'.join((*path, key))}]]\n"
                yield from _toml_table(item, (*path, key), header=False)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def env_lines(config: Config, non_zero_only: bool = False) -> list[str]:
    """``NAME=value`` for every env variable of the config, sorted, as ``defaultenv`` prints them."""
    default_tree = to_tree(Config(), unset_as_default=True)
    tree = to_tree(config, unset_as_default=True)
    lines = []
    for path, _tp, _kind in leaves(Config):
        value = _lookup(tree, path)
        if non_zero_only and value == _lookup(default_tree, path):
            continue
        lines.append(f"CENTRIFUGO_{env_suffix(path)}={_env_value(path, value)}")
    return sorted(lines)


def _env_value(path: tuple[str, ...], value: Any) -> str:
    if path in NAMED_LISTS:
        return json.dumps(" ".join(item["name"] for item in value))
    if isinstance(value, dict) or _is_table_list(value):
        return json.dumps(json.dumps(value, separators=(",", ":")))
    if isinstance(value, list):
        return " ".join(str(item) for item in value) if value else '""'
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value)


def _lookup(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for key in path:
        node = node[key]
    return node
