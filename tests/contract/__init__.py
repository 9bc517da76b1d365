"""Engine contract suites: one per interface, run against every implementation."""
