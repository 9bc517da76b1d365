"""The suite-wide Hypothesis profile (tests/conftest.py) is the one every property test runs under."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def test_property_tests_have_no_clock_based_checks() -> None:
    current = settings.default
    assert current.deadline is None
    assert HealthCheck.too_slow in current.suppress_health_check
    assert HealthCheck.data_too_large in current.suppress_health_check
    assert not current.derandomize
