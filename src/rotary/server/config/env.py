"""Environment variables of the config: names derived from key paths, values parsed Centrifugo's way.

``client.token.hmac_secret_key`` is read from ``CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY`` (or
``ROTARY_CLIENT_TOKEN_HMAC_SECRET_KEY``, which wins). An empty value counts as unset, lists of strings
are space-separated, lists of objects and maps are JSON. A named list (namespaces, proxies, consumers)
is either a JSON array or just the space-separated names of its items, which are then tuned one by
one, e.g. ``CENTRIFUGO_CHANNEL_NAMESPACES="chat news"`` with
``CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE=true``.
See https://centrifugal.dev/docs/server/configuration#os-environment-variables
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from rotary.server.config.fields import (
    Kind,
    is_mapping,
    is_section,
    item_type,
    kind_of,
    optional_of,
    schema_fields,
)
from rotary.server.config.schema import Config, NamedProxyConfig, NamespaceConfig
from rotary.server.config.schema_channels import RpcNamespaceConfig
from rotary.server.config.schema_engines import ConsumerConfig

PREFIXES = ("ROTARY", "CENTRIFUGO")
"""Earlier prefixes win when both names are set."""

ROTARY_ONLY_VARIABLES = frozenset({"ROTARY_ACME_DIRECTORY_URL", "ROTARY_WEBSOCKET_SERVER"})
"""rotary's own variables, read where they are used and matching no config key (Centrifugo has no
such setting): the ACME directory of rotary.server.tls.acme, and the private switch between the
WebSocket servers of rotary.server.connection_routes (``own_websocket_protocol``)."""

NAMED_LISTS: dict[tuple[str, ...], type] = {
    ("channel", "namespaces"): NamespaceConfig,
    ("rpc", "namespaces"): RpcNamespaceConfig,
    ("proxies",): NamedProxyConfig,
    ("consumers",): ConsumerConfig,
}
"""Lists whose items take per-item env overrides, keyed by the item's ``name``."""

NAMED_ITEMS = frozenset(NAMED_LISTS.values())
"""Item types of named lists: their env value is JSON when it starts with ``[`` and names otherwise
(a name can not start with ``[``, so a broken array is reported as JSON, not as an odd name)."""


class EnvValueError(ValueError):
    pass


def env_suffix(path: tuple[str, ...]) -> str:
    """The part after the prefix: upper-cased path joined by ``_``."""
    return "_".join(path).upper()


def item_env_name(name: str) -> str:
    """How an item name appears inside an env var: upper-cased, ``.`` and ``-`` become ``_``."""
    return re.sub(r"[.-]", "_", name).upper()


def leaves(cls: type, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Kind]]:
    """Every key settable from one env var: scalars, lists, maps and passthrough sub-trees."""
    for f, tp in schema_fields(cls):
        path = (*prefix, f.name)
        inner = optional_of(tp) or tp
        if is_section(inner) and kind_of(f) is Kind.PLAIN:
            yield from leaves(inner, path)
        else:
            yield path, tp, kind_of(f)


@functools.cache
def settable(cls: type) -> tuple[tuple[tuple[str, ...], Any, Kind, str], ...]:
    """The leaves of a schema class with their env suffix, walked once: the schema never changes,
    and walking it took most of the time of every config load."""
    return tuple((path, tp, kind, env_suffix(path)) for path, tp, kind in leaves(cls))


@functools.cache
def settable_suffixes(cls: type) -> dict[str, int]:
    """Each env suffix of a schema class with the index of its leaf in ``settable``."""
    return {suffix: index for index, (_, _, _, suffix) in enumerate(settable(cls))}


def parse_env_value(text: str, tp: Any, kind: Kind) -> Any:
    """The raw tree value of an env string; scalars stay strings for the converter to decode."""
    element = item_type(tp)
    if element in NAMED_ITEMS and not text.startswith("["):
        return [{"name": name} for name in text.split()]
    needs_json = kind is Kind.PASSTHROUGH or is_mapping(tp) or (element is not None and is_section(element))
    if needs_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise EnvValueError(f"expected JSON: {exc}") from None
    if element is not None:
        return text.split()
    return text


def lookup(environ: Mapping[str, str], suffix: str) -> tuple[str, str] | None:
    """(name, value) of the first non-empty prefixed variable."""
    for prefix in PREFIXES:
        name = f"{prefix}_{suffix}"
        value = environ.get(name, "")
        if value != "":
            return name, value
    return None


class EnvReader:
    """Applies env values onto a raw config tree and remembers which names it knows."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.applied: list[tuple[type, str, bool]] = []
        """(schema class, infix, name skipped) of every schema applied: the names they know."""
        self.problems: list[str] = []
        self._prefixed: list[str] | None = None

    def apply(self, raw: MutableMapping[str, Any]) -> None:
        self._apply_schema(Config, raw, "")
        for path, item_cls in NAMED_LISTS.items():
            items = get_path(raw, path)
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, MutableMapping) and isinstance(item.get("name"), str):
                    infix = f"{env_suffix(path)}_{item_env_name(item['name'])}_"
                    self._apply_schema(item_cls, item, infix, skip_name=True)

    def _apply_schema(
        self,
        cls: type,
        raw: MutableMapping[str, Any],
        infix: str,
        skip_name: bool = False,
    ) -> None:
        self.applied.append((cls, infix, skip_name))
        leaves = settable(cls)
        for index in self._set_leaves(cls, infix):
            path, tp, kind, leaf_suffix = leaves[index]
            if skip_name and path == ("name",):
                continue
            found = lookup(self.environ, infix + leaf_suffix)
            if found is None:
                continue
            name, text = found
            try:
                set_path(raw, path, parse_env_value(text, tp, kind))
            except EnvValueError as exc:
                self.problems.append(f"{'.'.join(path)} (from {name}): {exc}")

    def _set_leaves(self, cls: type, infix: str) -> list[int]:
        """Indexes in ``settable(cls)`` of the leaves a variable of the environment names, in schema
        order. The environment is walked instead of the schema: it holds a few dozen variables, the
        schema hundreds of leaves, and this runs once per named list item too."""
        suffixes = settable_suffixes(cls)
        indexes = set()
        for rest in self._suffixes():
            if rest.startswith(infix):
                index = suffixes.get(rest[len(infix) :])
                if index is not None:
                    indexes.add(index)
        return sorted(indexes)

    def _suffixes(self) -> list[str]:
        """What follows the prefix in each prefixed variable of the environment."""
        if self._prefixed is None:
            self._prefixed = [
                name[len(prefix) + 1 :]
                for name in self.environ
                for prefix in PREFIXES
                if name.startswith(f"{prefix}_")
            ]
        return self._prefixed

    def unknown(self) -> list[str]:
        """Prefixed variables that match no key, except Kubernetes service vars and ``*_VAR_*``."""
        prefixes = tuple(f"{p}_" for p in PREFIXES)
        candidates = (name for name in self.environ if name.startswith(prefixes))
        return sorted(
            name
            for name in candidates
            if name not in ROTARY_ONLY_VARIABLES and not self._known(name) and not _ignored(name)
        )

    def _known(self, name: str) -> bool:
        """Whether ``name`` (prefixed) sets a leaf of one of the schemas applied."""
        rest = name.partition("_")[2]
        for cls, infix, skip_name in self.applied:
            if rest.startswith(infix):
                suffix = rest[len(infix) :]
                if suffix in settable_suffixes(cls) and not (skip_name and suffix == "NAME"):
                    return True
        return False


WORKER_VARIABLE = "ROTARY_WORKER"
"""Set by the ``--workers`` supervisor in its workers' environment: not a config key."""


WORKER_METRICS_VARIABLE = "ROTARY_WORKER_METRICS_DIR"
"""Set by the supervisor too: the directory where its workers answer each other's metrics scrapes."""


PACKAGING_VARIABLE = "ROTARY_OPTS"
"""Extra command-line flags in /etc/default/rotary (packaging/deb): the systemd unit reads the file as
its environment, so rotary sees the variable too."""


def _ignored(name: str) -> bool:
    if name in (WORKER_VARIABLE, WORKER_METRICS_VARIABLE, PACKAGING_VARIABLE):
        return True
    return any(
        re.match(rf"^{prefix}(?:_[A-Z0-9_]+)?_(PORT|SERVICE_)", name) or name.startswith(f"{prefix}_VAR_")
        for prefix in PREFIXES
    )


def get_path(raw: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = raw
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def set_path(raw: MutableMapping[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, MutableMapping):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
