"""Build a Config from defaults < config file < environment < flags, the order Centrifugo uses.

All problems (unreadable values, broken rules) are gathered and raised together in one ConfigError;
unknown keys and unknown ``CENTRIFUGO_*``/``ROTARY_*`` variables only produce warnings, as in
Centrifugo, so a config written for another version still starts.
See https://centrifugal.dev/docs/server/configuration
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from rotary.server.config import ConfigError
from rotary.server.config.convert import Report, build
from rotary.server.config.env import EnvReader, set_path
from rotary.server.config.legacy_sockjs import upgrade_sockjs
from rotary.server.config.schema import Config
from rotary.server.config.validate import validate

DEFAULT_PATH = "config.json"


@dataclass(frozen=True)
class LoadResult:
    config: Config
    warnings: list[str] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)
    """Unknown file keys alone, which ``checkconfig --strict`` treats as fatal."""


def _parse_json(text: str) -> Any:
    return json.loads(text)


def _parse_yaml(text: str) -> Any:
    return yaml.safe_load(text)


def _parse_toml(text: str) -> Any:
    return tomllib.loads(text)


PARSERS = {".json": _parse_json, ".yaml": _parse_yaml, ".yml": _parse_yaml, ".toml": _parse_toml}


def read_file(path: str) -> dict[str, Any]:
    """The parsed tree of a JSON, YAML or TOML config file, chosen by extension."""
    extension = os.path.splitext(path)[1].lower()
    parser = PARSERS.get(extension)
    if parser is None:
        problem = f"{path}: unsupported config file extension {extension!r} (json, yaml, yml, toml)"
        raise ConfigError([problem])
    try:
        with open(path, encoding="utf-8") as file:
            tree = parser(file.read()) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot parse config file: {exc}"]) from None
    if not isinstance(tree, dict):
        raise ConfigError([f"{path}: the config file must hold an object at the top level"])
    return tree


def load_config(
    path: str | None, environ: Mapping[str, str], flags: Mapping[str, object] | None = None
) -> LoadResult:
    """The effective Config, validated: what a server can start with. Raises ConfigError.

    ``path=None`` reads config.json when it exists, ``""`` reads no file at all (defaultconfig without
    a base), and any other path must exist.
    """
    result = parse_config(path, environ, flags)
    problems = validate(result.config)
    if problems:
        raise ConfigError(problems)
    return result


def parse_config(
    path: str | None, environ: Mapping[str, str], flags: Mapping[str, object] | None = None
) -> LoadResult:
    """The Config as written, before the rules across keys are checked. Raises ConfigError for values
    that cannot be read at all."""
    raw, warnings = _read_source(path)
    warnings += upgrade_sockjs(raw)
    env = EnvReader(environ)
    env.apply(raw)
    for dotted, value in (flags or {}).items():
        set_path(raw, tuple(dotted.split(".")), value)
    report = Report(environ=environ)
    config = build(Config, raw, "", report)
    problems = env.problems + report.problems
    if problems:
        raise ConfigError(problems)
    warnings += [f"unknown key in config: {key}" for key in report.unknown_keys]
    warnings += [f"unknown environment variable: {name}" for name in env.unknown()]
    return LoadResult(config, warnings, report.unknown_keys)


def _read_source(path: str | None) -> tuple[dict[str, Any], list[str]]:
    if path == "":
        return {}, []
    if path is not None:
        if not os.path.exists(path):
            raise ConfigError([f"config file not found: {path}"])
        return read_file(path), []
    if os.path.exists(DEFAULT_PATH):
        return read_file(DEFAULT_PATH), []
    return {}, [f"config file not found: {DEFAULT_PATH}, using defaults, env and flags"]


def read_dotenv(path: str = ".env") -> dict[str, str]:
    """Variables of a ``.env`` file (``KEY=value`` lines, ``#`` comments, optional quotes)."""
    if not os.path.exists(path):
        return {}
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as file:
        for raw in file:
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values
