"""The code stays lint-clean (ruff) and type-checked (mypy --strict, configured in pyproject.toml);
the examples too, as users copy them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    done = run("ruff", "check", "src", "tests", "bench", "reliability", "examples")
    assert done.returncode == 0, done.stdout + done.stderr


def test_code_is_formatted() -> None:
    done = run("ruff", "format", "--check", "src", "tests", "bench", "reliability", "examples")
    assert done.returncode == 0, done.stdout + done.stderr


TYPED_EXAMPLES = ("examples/chat", "examples/dashboard")
"""The examples whose host frameworks ship type hints (FastAPI, aiohttp); Django has none."""


def test_mypy_strict_on_src_the_reliability_kit_and_typed_examples() -> None:
    done = run("mypy", "src", "reliability", *TYPED_EXAMPLES)
    assert done.returncode == 0, done.stdout + done.stderr
