"""``python -m reliability``: the reliability kit's one command.

    python -m reliability seed              write every target's seeds into reliability/corpus/
    python -m reliability fuzz [--inputs N] [TARGET...]
                                            fuzz each target with atheris for N inputs (default
                                            1,000,000), keep new coverage in the corpus, record
                                            the figures in reliability/results/fuzz.json
    python -m reliability faults [--cycles N]
                                            kill and pause Redis N times (default 10) under
                                            traffic, in reliability/results/faults.json
    python -m reliability all               seed, fuzz, faults, then report
    python -m reliability report            regenerate docs/reliability.md from the results

The suite runs the short variant of each (tests/reliability/).
"""

from __future__ import annotations

import argparse
import sys

from reliability.faults import run_faults
from reliability.fuzz.campaign import fuzz_all, write_seeds
from reliability.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("seed", help="write every target's seeds into reliability/corpus/")
    fuzz = commands.add_parser("fuzz", help="fuzz the targets with atheris")
    fuzz.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target")
    fuzz.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once")
    fuzz.add_argument("targets", nargs="*", help="target names (default: all)")
    faults = commands.add_parser("faults", help="kill and pause Redis under traffic")
    faults.add_argument("--cycles", type=int, default=10)
    commands.add_parser("all", help="seed, fuzz, faults, then report")
    commands.add_parser("report", help="regenerate docs/reliability.md")
    args = parser.parse_args(argv)
    if args.command == "seed":
        write_seeds()
        return 0
    if args.command == "fuzz":
        return 0 if fuzz_all(args.targets, args.inputs, args.jobs) else 1
    if args.command == "faults":
        return 0 if run_faults(args.cycles) else 1
    if args.command == "all":
        write_seeds()
        ok = fuzz_all([], 1_000_000) & run_faults(10)
        write_report()
        return 0 if ok else 1
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
