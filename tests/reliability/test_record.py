"""Runs of the kit that end together keep each other's figures (reliability/record.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reliability.record import code_commit, record

ROWS_EACH = 40

WRITER = """
import sys
from pathlib import Path
from reliability.record import code_commit, record
results, writer = Path(sys.argv[1]), sys.argv[2]
for row in range({rows}):
    record("runs", {{f"{{writer}}-{{row}}": {{"row": row}}}}, results)
"""


def test_writers_at_once_lose_no_row(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    code = WRITER.format(rows=ROWS_EACH)
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), name], cwd=root)
        for name in ("a", "b", "c")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]

    recorded = json.loads((tmp_path / "runs.json").read_text())
    assert sorted(recorded) == sorted(f"{name}-{row}" for name in "abc" for row in range(ROWS_EACH))
    assert [path.name for path in tmp_path.iterdir()] == ["runs.json"]  # no temporary file left


def test_a_row_keeps_its_figures_and_gains_commit_and_time(tmp_path: Path) -> None:
    record("fuzz", {"jwt": {"inputs": 10, "crashes": 0}}, tmp_path)
    record("fuzz", {"tags_filter": {"inputs": 5}}, tmp_path)
    record("fuzz", {"jwt": {"inputs": 20, "crashes": 0}}, tmp_path)

    recorded = json.loads((tmp_path / "fuzz.json").read_text())
    assert sorted(recorded) == ["jwt", "tags_filter"]
    assert recorded["jwt"]["inputs"] == 20
    assert set(recorded["jwt"]) == {"inputs", "crashes", "commit", "measured"}


def test_figures_of_an_uncommitted_tree_are_stamped_dirty(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    git("init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "code.py").write_text("x = 1\n")
    (tmp_path / "reliability" / "results").mkdir(parents=True)
    (tmp_path / "reliability" / "results" / "storm.json").write_text("{}\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = git("rev-parse", "--short", "HEAD")
    assert code_commit(tmp_path) == head

    (tmp_path / "reliability" / "results" / "storm.json").write_text('{"a": 1}\n')  # a run's own output
    assert code_commit(tmp_path) == head
    (tmp_path / "src" / "code.py").write_text("x = 2\n")
    assert code_commit(tmp_path) == f"{head}+dirty"
