"""--workers refuses the memory engine and keeps the rest of the command line for its workers."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from rotary.server.cli import _without_workers
from rotary.server.config.schema import Config
from rotary.server.workers import refusal


def test_memory_engine_is_refused_with_a_reason(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rotary", "--workers", "2"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "--workers needs a broker the workers share" in proc.stdout + proc.stderr


def test_workers_option_is_removed_from_worker_command_lines() -> None:
    assert _without_workers(["-c", "x.json", "--workers", "2", "--log.level", "debug"]) == [
        "-c",
        "x.json",
        "--log.level",
        "debug",
    ]
    assert _without_workers(["--workers=0", "-p", "9000"]) == ["-p", "9000"]


def test_autocert_is_refused_with_workers() -> None:
    """Each worker would bind the ACME challenge address and order its own certificates."""
    config = Config()
    engine = replace(config.engine, type="redis")
    http = replace(config.http_server, tls_autocert=replace(config.http_server.tls_autocert, enabled=True))
    assert refusal(replace(config, engine=engine)) is None
    problem = refusal(replace(config, engine=engine, http_server=http))
    assert problem is not None and "http_server.tls_autocert" in problem
