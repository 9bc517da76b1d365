"""The documentation and the examples use the public API only: every ``rotary`` import in a Python
code block of README.md and docs/, or a file of examples/, names an allowed module. Everything else
of rotary is private and may change in any release (docs/embedding.md)."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PUBLIC_MODULES = {
    "rotary",
    "rotary.mount",
    "rotary.testing",
}
"""Modules a user may import."""

CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _sources() -> Iterator[tuple[str, str]]:
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]:
        for number, block in enumerate(CODE_BLOCK.findall(page.read_text()), 1):
            yield f"{page.relative_to(REPO)} block {number}", block
    for path in sorted((REPO / "examples").glob("**/*.py")):
        yield str(path.relative_to(REPO)), path.read_text()


def _rotary_imports(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name.split(".")[0] == "rotary"]


@pytest.mark.parametrize(("where", "source"), list(_sources()), ids=lambda value: str(value)[:60])
def test_only_public_modules_are_imported(where: str, source: str) -> None:
    private = [name for name in _rotary_imports(source) if name not in PUBLIC_MODULES]
    assert private == [], f"{where} imports private modules"


def test_the_check_sees_the_embedding_guide_and_the_examples() -> None:
    seen = [where for where, _ in _sources()]
    assert any(where.startswith("docs/embedding.md") for where in seen)
    assert {"examples/chat/app.py", "examples/dashboard/app.py"} <= set(seen)


def test_every_public_module_is_importable() -> None:
    for name in PUBLIC_MODULES:
        importlib.import_module(name)
