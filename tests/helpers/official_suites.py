"""What the official SDK suites' tests (tests/compat/official) share.

Those suites expect their server at the fixed address localhost:8000, as their docker-compose.yml
starts it. In a fresh network namespace (``unshare --net``) that port is free by construction, so
each suite runs unmodified next to rotary there, whatever else the machine runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

from helpers.env import IN_CI, require_binary


def unavailable(reason: str) -> NoReturn:
    """Skips with the reason printed; under CI, where everything must be in place, fails."""
    print(reason)
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def namespace_command(unshare: str) -> list[str]:
    """A new network namespace; unprivileged users get one inside a user namespace."""
    as_root = [] if os.geteuid() == 0 else ["--map-root-user"]
    return [unshare, "--net", *as_root]


def require_namespaces(unshare: str) -> None:
    probe = subprocess.run([*namespace_command(unshare), "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        unavailable(f"cannot create a network namespace here: {probe.stderr.strip()}")


def rotary_executable() -> str:
    path = Path(sys.executable).with_name("rotary")
    if not path.exists():
        pytest.fail(f"{path} is missing; run `pip install -e .` in the project's virtualenv")
    return str(path)


def tail(path: Path, count: int) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-count:] if path.exists() else []


def run_runner(
    runner: Path, suite: Path, output: Path, rotary_log: Path, args: list[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Runs a suite runner script (it starts rotary, then the suite) inside a new network namespace."""
    unshare = require_binary("unshare")
    require_namespaces(unshare)
    command = [
        *namespace_command(unshare),
        sys.executable,
        str(runner),
        "--suite",
        str(suite),
        "--rotary",
        rotary_executable(),
        "--output",
        str(output),
        "--rotary-log",
        str(rotary_log),
        "--",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
