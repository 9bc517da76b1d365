"""Free ports and external binaries that may be missing from a developer's machine.

A test that needs a program this machine lacks (redis-server, nats-server, node, chromium) is skipped
with the reason printed; under CI=true it fails instead, because CI installs all of them.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

START_LIMIT = 60.0
"""Seconds a process a test starts (rotary, Centrifugo, redis-server, nats-server, pebble, an example)
gets to be ready. An upper bound, never a margin: a quiet machine is ready in well under a second,
and the suite must pass while other work keeps both cores busy, where starts took over 15 s."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str) -> str:
    """The path of an executable; skips the test (fails under CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if IN_CI:
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message)
    return path


def raise_open_files(wanted: int) -> None:
    """Raises this process's open-files limit to ``wanted`` (child processes inherit it), the hard
    limit too where allowed (root); skips the test when it cannot, as bench/system.py warns."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard == resource.RLIM_INFINITY or hard >= wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    except (ValueError, OSError):
        pytest.skip(f"this test needs {wanted} open files; the hard limit is {hard}")
