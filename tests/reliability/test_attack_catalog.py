"""Every test the attack catalog (reliability/attacks.py) names exists."""

from __future__ import annotations

import re
from pathlib import Path

from reliability.attacks import ATTACKS

ROOT = Path(__file__).resolve().parents[2]


def test_every_named_test_exists() -> None:
    missing = []
    for attack in ATTACKS:
        for test in attack.tests:
            path, _, name = test.partition("::")
            source = ROOT / path
            if not source.is_file() or not re.search(rf"^(async )?def {name}\(", source.read_text(), re.M):
                missing.append(f"{attack.name}: {test}")
    assert not missing, missing
