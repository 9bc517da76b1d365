"""centrifuge-python's own test suite, as released, passes against rotary.

The SDK's sdist ships its tests and the docker-compose.yml of the Centrifugo they expect
(https://centrifugal.dev/docs/transports/client_sdk). This test downloads that sdist once into the
git-ignored ``.cache/`` of the repository, unpacks it, and runs ``python -m unittest discover -s
tests`` (the SDK's ``make test``) next to rotary inside a private network namespace, where the
suite's fixed address localhost:8000 is free. Nothing of the suite is edited, skipped or filtered.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers.official_suites import run_runner, tail, unavailable

pytestmark = pytest.mark.compat

SDIST = "centrifuge_python-0.7.0.tar.gz"
REQUIREMENT = "centrifuge-python==0.7.0"
SDIST_SHA256 = "11252b45c3f6b6104cfb07fb0fcfc9d2d62832d2af14715dd16fdc5e9c6e5964"
"""The file PyPI serves for the release; a different one is not the suite this test vouches for."""

UNITTEST_ARGS = ["discover", "-s", "tests", "-v"]
"""The SDK Makefile's ``test`` target, verbose; every test module of the sdist is selected."""

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = REPO_ROOT / ".cache" / "official-suites"
RUNNER = Path(__file__).with_name("suite_runner.py")
RUN_TIMEOUT = 420.0
REPORT_LINES = 400


def sdist() -> Path:
    """The release archive, downloaded with pip on first use and checked against its digest."""
    path = CACHE_DIR / SDIST
    if not path.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--disable-pip-version-check",
                "-q",
                REQUIREMENT,
                "-d",
                str(CACHE_DIR),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not path.exists():
            unavailable(f"could not download the {REQUIREMENT} sdist: {done.stderr.strip()[-2000:]}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        path.unlink()
        pytest.fail(f"{SDIST} has sha256 {digest}, expected {SDIST_SHA256}; removed it")
    return path


def unpacked(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


def failure_reports(suite_output: Path) -> list[str]:
    """The suite's failure reports: unittest prints them after a ``=====`` rule, at the end."""
    if not suite_output.exists():
        return []
    lines = suite_output.read_text(errors="replace").splitlines()
    start = next((i for i, line in enumerate(lines) if line == "=" * 70), max(0, len(lines) - 50))
    heading = f"--- centrifuge-python's suite (full output: {suite_output}) ---"
    return [heading, *lines[start:][-REPORT_LINES:]]


def test_official_suite_passes(tmp_path: Path) -> None:
    suite = unpacked(sdist(), tmp_path / "sdist")
    suite_output, rotary_log = tmp_path / "suite.log", tmp_path / "rotary.log"
    done = run_runner(RUNNER, suite, suite_output, rotary_log, UNITTEST_ARGS, RUN_TIMEOUT)
    if done.returncode != 0:
        pytest.fail(
            "\n".join(
                [
                    *failure_reports(suite_output),
                    f"--- rotary log, last lines (full log: {rotary_log}) ---",
                    *tail(rotary_log, 100),
                    f"--- runner (exit code {done.returncode}) ---",
                    done.stdout + done.stderr,
                ]
            ),
            pytrace=False,
        )
