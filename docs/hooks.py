"""mkdocs hooks generating the pages that come from the code, so that the site never drifts from it.

``refused-keys.md`` lists rotary.server.config.unbuilt's table (the Centrifugo keys rotary refuses
because the feature is not built), ``config-reference.md`` is ``rotary configdoc --markdown``
(rotary.server.config.doc, from the schema's descriptions) and ``api-reference.md`` documents the
public library API (``rotary.__all__``, ``rotary.mount`` and ``rotary.testing``) from its docstrings. The reliability report is linked when
docs/reliability.md exists. See https://www.mkdocs.org/user-guide/configuration/#hooks
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import re
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

from rotary.server.config.doc import MarkdownOptions, document, markdown
from rotary.server.config.unbuilt import LIST_STEP, UNBUILT

REFUSED = "refused-keys.md"
REFERENCE = "config-reference.md"
API = "api-reference.md"
RELIABILITY = "reliability.md"


def on_config(config: MkDocsConfig, **kwargs: Any) -> MkDocsConfig:
    if (Path(config.docs_dir) / RELIABILITY).is_file():
        config.nav.append({"Reliability report": RELIABILITY})
    return config


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    files.append(File.generated(config, REFUSED, content=refused_keys_page()))
    files.append(File.generated(config, REFERENCE, content=config_reference_page()))
    files.append(File.generated(config, API, content=api_reference_page()))
    return files


def refused_keys_page() -> str:
    lines = [
        "# Refused keys",
        "",
        "Setting one of these Centrifugo keys to anything but its default makes `rotary checkconfig` and",
        "the start fail with a message naming the key: the feature behind it is not built in rotary yet,",
        "and a server that silently does less than its config says would be worse than no server.",
        f"`{LIST_STEP}` stands for every item of a list. This page is generated from",
        "`src/rotary/server/config/unbuilt.py` when the site is built.",
        "",
    ]
    entries = sorted(UNBUILT, key=lambda entry: (entry.feature, entry.path))
    by_feature = itertools.groupby(entries, key=lambda entry: entry.feature)
    lines += ["| Feature | Keys |", "| --- | --- |"]
    for feature, group in by_feature:
        keys = ", ".join(f"`{entry.path}`" for entry in group)
        lines.append(f"| {feature} | {keys} |")
    return "\n".join(lines) + "\n"


def config_reference_page() -> str:
    intro = (
        "# Config reference\n\n"
        "Every key rotary reads, with its type, default and environment variable, as "
        "`rotary configdoc --markdown` prints it (generated from the config schema when the site is "
        "built). Keys are Centrifugo v6's; those listed in [Refused keys](refused-keys.md) make rotary "
        "refuse to start when set.\n\n"
    )
    return intro + markdown(document(), MarkdownOptions(base_level=1))


INHERITED_NODE_METHODS = ("start", "shutdown", "unsubscribe", "refresh", "remove_history", "channels", "info")
"""Public methods the public Node inherits from the internal one (the rest of it is private)."""


def api_reference_page() -> str:
    import rotary
    import rotary.mount
    import rotary.testing

    lines = [
        "# API reference",
        "",
        "Every public name of rotary, generated from the docstrings when the site is built. Anything",
        "not listed here is private. See [Embedding](embedding.md) for the guide.",
        "",
    ]
    for module in (rotary, rotary.mount, rotary.testing):
        lines += [f"## `{module.__name__}`", "", _text(inspect.getdoc(module)), ""]
        for name in sorted(module.__all__, key=str.lower):
            if not name.startswith("_"):
                lines += _entry(module, name, getattr(module, name))
    return "\n".join(lines) + "\n"


def _text(doc: str | None) -> str:
    """reST roles as Markdown code."""
    return re.sub(r":(?:class|meth|func|attr|mod):`~?([^`]+)`", r"`\1`", doc or "")


def _entry(module: ModuleType, name: str, obj: Any) -> list[str]:
    lines = [f"### `{module.__name__}.{name}`", ""]
    if inspect.isfunction(obj):
        return [*lines, f"```\n{name}{_signature(obj)}\n```", "", _text(inspect.getdoc(obj)), ""]
    if not inspect.isclass(obj):
        return [*lines, _text(inspect.getdoc(obj)), ""]
    lines += [f"```\nclass {name}{_signature(obj)}\n```", "", _text(inspect.getdoc(obj)), ""]
    init = vars(obj).get("__init__")
    if init is not None and init.__doc__:
        lines += [_text(inspect.cleandoc(init.__doc__)), ""]
    if dataclasses.is_dataclass(obj):
        docs = _field_docs(obj)
        for field in dataclasses.fields(obj):
            default = "" if field.default is dataclasses.MISSING else f" = `{field.default!r}`"
            doc = f": {docs[field.name]}" if field.name in docs else ""
            lines.append(f"- `{field.name}`: `{field.type}`{default}{doc}")
        lines.append("")
    methods = [(n, m) for n, m in vars(obj).items() if inspect.isfunction(m) and not n.startswith("_")]
    if name == "Node":
        methods += [(n, getattr(obj, n)) for n in INHERITED_NODE_METHODS]
    for method_name, method in methods:
        lines += [f"#### `{name}.{method_name}`", "", f"```\n{method_name}{_signature(method)}\n```", ""]
        lines += [_text(inspect.getdoc(method)), ""]
    return lines


def _signature(obj: Any) -> str:
    """The signature with its annotations as written (they are strings: postponed evaluation)."""
    try:
        signature = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""
    return re.sub(r"(: |-> )'([^']*)'", r"\1\2", signature)


def _field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under dataclass fields (Python keeps none of them)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for field, doc in itertools.pairwise(body.body):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)
            ):
                docs[field.target.id] = _text(" ".join(inspect.cleandoc(doc.value.value).split()))
    return docs
