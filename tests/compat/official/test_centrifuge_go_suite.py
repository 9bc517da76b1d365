"""centrifuge-go's own test suite, as released, passes against rotary.

The SDK's CI (.github/workflows/ci.yml of centrifugal/centrifuge-go) runs ``docker compose up -d``,
which starts Centrifugo on localhost:8000 as its docker-compose.yml says (``centrifugo
--client.insecure`` with CENTRIFUGO_* variables for delta, history, recovery and a ``smallhistory``
namespace), then ``go test -race -v`` in the module root. This test takes the module source that
``tests/tools/go-deps`` copied from the Go module proxy, and runs that command, with ``-json`` for
per-test results, next to rotary inside a private network namespace where port 8000 is free.
Nothing of the suite is edited, skipped or filtered (https://centrifugal.dev/docs/transports/client_sdk).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.env import require_binary
from helpers.go_deps import go_deps
from helpers.official_suites import run_runner, tail, unavailable

pytestmark = pytest.mark.compat

GO_TEST_ARGS = ["-race", "-json", "-count=1", "-timeout", "300s", "."]
"""The CI's ``go test -race -v``; ``-json`` is ``-v`` as events, ``-count=1`` bypasses the test cache."""

RUNNER = Path(__file__).with_name("go_suite_runner.py")
PREPARE_TIMEOUT = 900.0
"""Downloading the SDK's modules and a first race-enabled build: minutes on a loaded machine."""
RUN_TIMEOUT = 480.0
REPORT_LINES = 60


@dataclass
class GoTestResults:
    """Per-test outcomes from ``go test -json`` events; subtests (``Parent/child``) count as tests."""

    outcomes: dict[str, str] = field(default_factory=dict)
    output: dict[str, list[str]] = field(default_factory=dict)
    package_output: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, path: Path) -> GoTestResults:
        results = cls()
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                results.package_output.append(line)  # the build's own errors are plain text
                continue
            test, action = event.get("Test"), event.get("Action")
            if action == "output":
                target = results.output.setdefault(test, []) if test else results.package_output
                target.append(event.get("Output", "").rstrip("\n"))
            elif test and action in ("pass", "fail", "skip"):
                results.outcomes[test] = action
        return results

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    def summary(self) -> str:
        counts = self.counts()
        return (
            f"centrifuge-go suite against rotary: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['skip']} skipped ({len(self.outcomes)} tests and subtests)"
        )

    def failure_reports(self) -> list[str]:
        lines: list[str] = []
        for test, outcome in self.outcomes.items():
            if outcome == "fail":
                lines.append(f"--- {test} ---")
                lines.extend(self.output.get(test, [])[-REPORT_LINES:])
        return lines


def prepare(suite: Path) -> None:
    """Downloads the SDK's modules and builds its race-enabled test binary outside the namespace."""
    environment = os.environ | {"GOTOOLCHAIN": "local"}
    for command in (["go", "mod", "download"], ["go", "test", "-race", "-c", "-o", os.devnull, "."]):
        try:
            done = subprocess.run(
                command,
                cwd=suite,
                env=environment,
                capture_output=True,
                text=True,
                timeout=PREPARE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            unavailable(f"`{' '.join(command)}` in {suite} did not finish within {PREPARE_TIMEOUT:.0f}s")
        if done.returncode != 0:
            unavailable(f"`{' '.join(command)}` in {suite} failed: {done.stderr.strip()[-2000:]}")


def test_official_go_suite_passes(tmp_path: Path) -> None:
    require_binary("go")
    suite = go_deps()["centrifuge_go"]
    prepare(suite)
    suite_output, rotary_log = tmp_path / "go-test.json", tmp_path / "rotary.log"
    done = run_runner(RUNNER, suite, suite_output, rotary_log, GO_TEST_ARGS, RUN_TIMEOUT)
    results = GoTestResults.parse(suite_output) if suite_output.exists() else GoTestResults()
    print(results.summary())
    if done.returncode != 0 or results.counts()["fail"] or not results.counts()["pass"]:
        pytest.fail(
            "\n".join(
                [
                    results.summary(),
                    *results.failure_reports(),
                    f"--- go test, package output (full output: {suite_output}) ---",
                    *results.package_output[-REPORT_LINES:],
                    f"--- rotary log, last lines (full log: {rotary_log}) ---",
                    *tail(rotary_log, 100),
                    f"--- runner (exit code {done.returncode}) ---",
                    done.stdout + done.stderr,
                ]
            ),
            pytrace=False,
        )
