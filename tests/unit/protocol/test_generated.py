"""The committed generated modules are exactly what proto/generate.sh writes today."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]


def test_generated_modules_match_the_script(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(tmp_path / "proto" / "generate.sh")], check=True, env=env, capture_output=True
    )
    generated = sorted(p for p in (tmp_path / "src").rglob("*") if p.is_file())
    assert generated, "generate.sh wrote nothing"
    for path in generated:
        committed = ROOT / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed} differs from generate.sh output"
