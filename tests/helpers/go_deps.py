"""Where ``tests/tools/go-deps`` put Centrifugo and the centrifuge-go source, installing them if needed.

The tool installs both by module name into the git-ignored ``.cache/go`` and prints
``centrifugo=<path>`` and ``centrifuge_go=<dir>``; a second call only prints. Tests that need them
skip with the tool's error outside CI and fail under CI=true, like tests needing redis-server.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers.official_suites import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL = REPO_ROOT / "tests" / "tools" / "go-deps"
INSTALL_TIMEOUT = 900.0
"""A first install builds Centrifugo from source: minutes on a loaded 2-core machine."""


def go_deps() -> dict[str, Path]:
    """``{"centrifugo": <binary>, "centrifuge_go": <module source dir>}`` from the tool's output."""
    try:
        done = subprocess.run(
            [str(TOOL)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        unavailable(f"{TOOL} did not finish within {INSTALL_TIMEOUT:.0f}s")
    if done.returncode != 0:
        unavailable(f"{TOOL} failed (exit code {done.returncode}): {done.stderr.strip()[-2000:]}")
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return {name: Path(path) for name, path in found.items()}
