"""The long runs of the suite's fault, storm and soak tests, with their figures recorded.

Each scenario is a test of the suite (its checks are the test's assertions) run larger through
environment variables: tests/compat/test_fault_cycles.py with ``RELIABILITY_FAULT_CYCLES`` cycles,
tests/compat/test_reconnect_storm.py with ``RELIABILITY_STORM_CLIENTS`` clients, and
tests/reliability/test_soak.py with ``RELIABILITY_SOAK_CONNECTIONS`` connections for
``RELIABILITY_SOAK_TICKS`` rounds. What a test measured comes back through ``RELIABILITY_RESULTS``
and is kept, with the commit and the date, in reliability/results/<kind>.json for the report. The
names are not ROTARY_ ones: the rotary processes the tests start would warn about them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from reliability.record import record

KIT = Path(__file__).resolve().parent
ROOT = KIT.parent
FAULT_SCENARIOS = {
    "redis": "tests/compat/test_fault_cycles.py::test_redis_killed_and_paused_in_cycles",
    "nats": "tests/compat/test_fault_cycles.py::test_nats_killed_and_paused_in_cycles",
    "redis partitioned": "tests/compat/test_fault_cycles.py::test_redis_partitioned_and_slowed_in_cycles",
}
STORM = "tests/compat/test_reconnect_storm.py::test_clients_of_a_dead_node_all_come_back_and_recover"
SOAK = "tests/reliability/test_soak.py::test_churn_and_publications_leak_nothing"


def run_faults(cycles: int, names: list[str] | None = None) -> bool:
    """Runs the fault scenarios ``names`` (all when empty) with ``cycles`` cycles; True when all held."""
    chosen = {name: test for name, test in FAULT_SCENARIOS.items() if not names or name in names}
    return run_recorded("faults", chosen, {"RELIABILITY_FAULT_CYCLES": str(cycles)})


STORM_CROWD_NICE = 10
"""The crowd processes' ``nice``: the node gets the CPU first, as with clients on machines of their own."""


def run_storm(
    clients: int,
    turned_away: int,
    max_reconnect_delay: float = 20.0,
    client_timeout: float = 5.0,
    sdk: str = "js",
    server: str = "rotary",
) -> bool:
    """The reconnect storm with ``clients`` clients of ``sdk`` (``js``: centrifuge-js in Node,
    ``python``: centrifuge-python), ``turned_away`` of them beyond the rate limit, their SDK's
    reconnect backoff capped at ``max_reconnect_delay`` seconds and its timeout ``client_timeout``
    seconds (the SDKs' defaults: 20 and 5), against two nodes of ``server`` (``rotary``, or
    ``centrifugo`` for comparison)."""
    env = {
        "RELIABILITY_STORM_SDK": sdk,
        "RELIABILITY_STORM_SERVER": server,
        "RELIABILITY_STORM_CLIENTS": str(clients),
        "RELIABILITY_STORM_TURNED_AWAY": str(turned_away),
        "RELIABILITY_STORM_MAX_RECONNECT_DELAY": str(max_reconnect_delay),
        "RELIABILITY_STORM_CLIENT_TIMEOUT": str(client_timeout),
        "RELIABILITY_STORM_CROWD_NICE": str(STORM_CROWD_NICE),
    }
    name = f"{clients} clients, centrifuge-{sdk}, backoff up to {max_reconnect_delay:g} s"
    if client_timeout != 5.0:
        name += f", timeout {client_timeout:g} s"
    if server != "rotary":
        name += f", against {server}"
    return run_recorded("storm", {name: STORM}, env)


def run_soak(connections: int, ticks: int) -> bool:
    """The soak with ``connections`` connections for ``ticks`` rounds of churn and publication."""
    env = {"RELIABILITY_SOAK_CONNECTIONS": str(connections), "RELIABILITY_SOAK_TICKS": str(ticks)}
    return run_recorded("soak", {f"{connections} connections": SOAK}, env)


def run_recorded(kind: str, scenarios: dict[str, str], env: dict[str, str]) -> bool:
    """Runs each scenario's test with ``env`` and records its figures under its name in
    reliability/results/<kind>.json; True when every test passed."""
    ok = True
    for name, test in scenarios.items():
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            child = {**os.environ, **env, "RELIABILITY_RESULTS": out.name}
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
                cwd=ROOT,
                env=child,
                check=False,
            )
            # A test that did not hold may leave its figures too (the storm does, with why).
            figures = json.loads(Path(out.name).read_text() or "{}")
        # A test that skipped (a missing binary, too few open files) passed without measuring.
        held = done.returncode == 0 and bool(figures)
        ok = ok and held
        record(kind, {name: {**figures, "held": held}})
        outcome = "held" if held else "FAILED" if done.returncode else "SKIPPED (see the output above)"
        print(f"{kind}/{name}: {outcome} {figures}")
    return ok
