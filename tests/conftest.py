"""Settings every test of the suite shares, loaded before any test module.

Property tests must not depend on how fast the machine is: on a loaded CI runner Hypothesis' default
200 ms deadline and its "input generation is slow" / "data too large" health checks fail tests whose
code is correct. The ``rotary`` profile turns those clock-based checks off; examples stay random (a
new seed each run finds new cases) and failing examples are still printed with their seed. Under CI
the example database is off, so a run depends on nothing a previous run left behind.
"""

from __future__ import annotations

from typing import Any

from helpers.env import IN_CI
from hypothesis import HealthCheck, settings

ci_only: dict[str, Any] = {"database": None} if IN_CI else {}
settings.register_profile(
    "rotary",
    deadline=None,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
    derandomize=False,
    print_blob=True,
    **ci_only,
)
settings.load_profile("rotary")
