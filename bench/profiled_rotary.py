"""Runs the ``rotary`` command under cProfile for the benchmark's server launch.

fanout.py uses it instead of ``.venv/bin/rotary`` when BENCH_PROFILE names a directory; the stats are
written to ``<dir>/rotary-<pid>.prof`` when the server stops (read them with ``python -m pstats``).
The profile's clock is the main thread's CPU time, not the wall clock: on a host that other work
keeps busy, time the server spends preempted is not charged to whatever function it was in.
"""

from __future__ import annotations

import cProfile
import os
import sys
import time
from pathlib import Path

from rotary.server.cli import main

if __name__ == "__main__":
    out = Path(os.environ["BENCH_PROFILE"]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        code = main(sys.argv[1:])
    finally:
        profiler.disable()
        profiler.dump_stats(out / f"rotary-{os.getpid()}.prof")
    sys.exit(code)
