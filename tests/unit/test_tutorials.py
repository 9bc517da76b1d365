"""The mount tutorials' code runs as written: the Python blocks of docs/fastapi.md and
docs/aiohttp.md, executed in order as one program, build their node and application, and the
tutorial's own test function (the TestClient section) passes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", ["fastapi.md", "aiohttp.md"])
async def test_the_tutorial_program_runs_and_its_test_passes(page: str) -> None:
    namespace: dict[str, Any] = {"__name__": f"tutorial_{page.removesuffix('.md')}"}
    for number, block in enumerate(CODE_BLOCK.findall((DOCS / page).read_text()), 1):
        exec(compile(block, f"docs/{page} block {number}", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests and all(inspect.iscoroutinefunction(test) for test in tests)
    for test in tests:
        await test()
    assert namespace["app"] is not None
