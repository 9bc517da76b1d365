"""rotary's reliability kit: fuzzing, faults, soak, reconnect storms and attacks, with a report.

``python -m reliability --help`` lists what it runs. The short variants run in the test suite
(tests/reliability/); the long ones run on demand and regenerate docs/reliability.md.
"""
