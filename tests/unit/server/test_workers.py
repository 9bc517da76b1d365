"""--workers refuses the memory engine and keeps the rest of the command line for its workers."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from rotary.server.cli import _without_workers
from rotary.server.config.schema import Config
from rotary.server.workers import CrashPolicy, refusal


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


def test_crash_policy_backs_off_and_gives_up_at_the_limit_within_the_window() -> None:
    policy = CrashPolicy(first_delay=0.5, max_delay=2.0, window=60.0, limit=4)
    assert [policy.record(now) for now in (0.0, 1.0, 2.0)] == [0.5, 1.0, 2.0]
    assert policy.record(3.0) is None


def test_crash_policy_forgets_crashes_older_than_the_window() -> None:
    policy = CrashPolicy(first_delay=0.5, max_delay=2.0, window=60.0, limit=3)
    assert policy.record(0.0) == 0.5
    assert policy.record(1.0) == 1.0
    assert policy.record(60.5) == 1.0  # the crash at 0 left the window; the one at 1 is still in it
    assert policy.record(60.9) is None


WORKER_SCRIPT = """
import os, sys, time
from rotary.server.workers import announce_serving
mode = sys.argv[1]
if mode == "fail":
    print("worker: cannot listen", file=sys.stderr, flush=True)
    sys.exit(7)
if mode == "serve":
    announce_serving()
    while True:
        time.sleep(1)
if mode == "crash":
    announce_serving()
    with open(sys.argv[2], "a") as starts:
        starts.write("x")
    sys.exit(3)
"""

SUPERVISOR_SCRIPT = """
import sys
from rotary.server.workers import CrashPolicy, Supervisor
worker, *modes = sys.argv[1:]
policy = CrashPolicy(first_delay=0.01, max_delay=0.01, window=3600.0, limit=3)
supervisor = Supervisor(1, [], policy=policy, command=[sys.executable, worker, *modes])
sys.exit(supervisor.run())
"""


def supervise(tmp_path: Path, *modes: str) -> subprocess.CompletedProcess[str]:
    """Runs a supervisor in its own process (it installs signal handlers) over a scripted worker."""
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER_SCRIPT)
    return subprocess.run(
        [sys.executable, "-c", SUPERVISOR_SCRIPT, str(worker), *modes],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )


def test_a_worker_that_cannot_start_ends_the_server_with_its_exit_code(tmp_path: Path) -> None:
    """Centrifugo is one process that exits when it cannot start; restarting would hide that."""
    proc = supervise(tmp_path, "fail")
    assert proc.returncode == 7
    assert "worker: cannot listen" in proc.stderr
    assert "worker 0 could not start (exit code 7); stopping the server" in proc.stderr
    assert "started (pid" not in proc.stderr.split("could not start")[1]


def test_a_worker_that_keeps_crashing_is_restarted_then_ends_the_server(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    proc = supervise(tmp_path, "crash", str(starts))
    assert proc.returncode == 1
    assert starts.read_text() == "xxx"  # started, restarted twice, the third crash is the limit
    assert proc.stderr.count("starting it again") == 2
    assert "worker 0 exited with 3: 3 worker crashes within 3600s; stopping the server" in proc.stderr
