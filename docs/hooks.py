"""mkdocs hooks generating the pages that come from the code, so that the site never drifts from it.

``refused-keys.md`` lists rotary.server.config.unbuilt's table (the Centrifugo keys rotary refuses
because the feature is not built) and ``config-reference.md`` is ``rotary configdoc --markdown``
(rotary.server.config.doc, from the schema's descriptions). The reliability report is linked when
docs/reliability.md exists. See https://www.mkdocs.org/user-guide/configuration/#hooks
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

from rotary.server.config.doc import MarkdownOptions, document, markdown
from rotary.server.config.unbuilt import LIST_STEP, UNBUILT

REFUSED = "refused-keys.md"
REFERENCE = "config-reference.md"
RELIABILITY = "reliability.md"


def on_config(config: MkDocsConfig, **kwargs: Any) -> MkDocsConfig:
    if (Path(config.docs_dir) / RELIABILITY).is_file():
        config.nav.append({"Reliability report": RELIABILITY})
    return config


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    files.append(File.generated(config, REFUSED, content=refused_keys_page()))
    files.append(File.generated(config, REFERENCE, content=config_reference_page()))
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
