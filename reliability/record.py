"""The one writer of reliability/results/<kind>.json, where each run of the kit leaves its figures.

Runs of the kit may end at the same moment (two fuzz campaigns started together with the same time
limit do): each merges its rows under an exclusive lock on the results directory and replaces the
file by a rename, so none reads a half-written file or drops the rows another just wrote.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

KIT = Path(__file__).resolve().parent
RESULTS = KIT / "results"


CODE = ("src", "tests", "bench", "reliability", ":(exclude)reliability/results")
"""What a run's figures depend on: the kit's own results change during a run and do not count."""


def code_commit(root: Path) -> str:
    """The short hash of HEAD at ``root``, with ``+dirty`` when the code that ran (``CODE``)
    differs from it: figures of an uncommitted tree are not stamped as the commit's."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout

    commit = git("rev-parse", "--short", "HEAD").strip()
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *CODE).strip()
    return f"{commit}+dirty" if commit and changed else commit


def record(kind: str, rows: Mapping[str, Mapping[str, object]], results: Path = RESULTS) -> None:
    """Sets each row of ``rows`` (by name) in ``<kind>.json`` of ``results``, with the commit and
    the time."""
    commit = code_commit(KIT.parent)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results.mkdir(exist_ok=True)
    path = results / f"{kind}.json"
    directory = os.open(results, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        recorded = json.loads(path.read_text()) if path.exists() else {}
        for name, row in rows.items():
            recorded[name] = {**row, "commit": commit, "measured": when}
        fresh = path.with_name(f".{path.name}.{os.getpid()}")
        fresh.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        os.replace(fresh, path)
    finally:
        os.close(directory)  # releases the lock
