"""Summarises collapsed stacks written by ``py-spy record --format raw`` (see fanout.py BENCH_PYSPY).

Prints the frames where samples ended (self time, native frames included: a syscall shows up as
``write (libc.so.6)``) and the Python functions samples passed through (total time), as shares of
all samples, so "where does the server's time go" has a short answer.
Run: ``python bench/stacks.py bench/results/pyspy-rotary-5000.txt [--top 25]``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE_NUMBER = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``: samples of one function add up."""
    frame = LINE_NUMBER.sub(")", frame)
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.rstrip(')')).name})" if where else name


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            if name.endswith(".py)"):
                total[name] += count
    return samples, own, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    samples, own, total = summarise(args.stacks)
    for title, counter in (("self", own), ("total", total)):
        print(f"{title} time ({samples} samples)")
        for name, count in counter.most_common(args.top):
            print(f"  {count / samples:6.1%}  {name}")


if __name__ == "__main__":
    main()
