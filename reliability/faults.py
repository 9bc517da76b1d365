"""The long runs of the suite's fault, storm and soak tests, with their figures recorded.

tests/compat/test_fault_cycles.py holds the scenario and its checks (nothing accepted lost
silently, no process dies, memory flat); this runs it with ``ROTARY_FAULT_CYCLES`` cycles and keeps
what it measured in reliability/results/faults.json for the report.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KIT = Path(__file__).resolve().parent
ROOT = KIT.parent
RESULTS = KIT / "results"
SCENARIOS = {
    "redis": "tests/compat/test_fault_cycles.py::test_redis_killed_and_paused_in_cycles",
    "nats": "tests/compat/test_fault_cycles.py::test_nats_killed_and_paused_in_cycles",
    "redis partitioned": "tests/compat/test_fault_cycles.py::test_redis_partitioned_and_slowed_in_cycles",
}


def run_faults(cycles: int, names: list[str] | None = None) -> bool:
    """Runs the fault scenarios ``names`` (all when empty) with ``cycles`` cycles; True when all held."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "faults.json"
    recorded = json.loads(path.read_text()) if path.exists() else {}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    ok = True
    for name, test in SCENARIOS.items():
        if names and name not in names:
            continue
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            env = {**os.environ, "ROTARY_FAULT_CYCLES": str(cycles), "ROTARY_RELIABILITY_RESULTS": out.name}
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", test], cwd=ROOT, env=env, check=False
            )
            figures = json.loads(Path(out.name).read_text() or "{}") if done.returncode == 0 else {}
        held = done.returncode == 0
        ok = ok and held
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        recorded[name] = {**figures, "held": held, "commit": commit, "measured": when}
        print(f"faults/{name}: {'held' if held else 'FAILED'} {figures}")
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return ok
