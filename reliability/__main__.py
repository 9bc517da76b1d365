"""``python -m reliability``: the reliability kit's one command.

    python -m reliability seed              write every target's seeds into reliability/corpus/
    python -m reliability fuzz [--inputs N] [--max-seconds S] [TARGET...]
                                            fuzz each target with atheris for N inputs (default
                                            1,000,000), keep new coverage in the corpus, record
                                            the figures in reliability/results/fuzz.json
    python -m reliability faults [--cycles N] [SCENARIO...]
                                            kill and pause Redis and NATS, cut and slow the link
                                            to Redis, N times each (default 10) under traffic,
                                            in reliability/results/faults.json
    python -m reliability soak [--connections N] [--ticks T]
                                            N connections (default 10,000) churning N/40 at once
                                            per round for T rounds, publications flowing, leaks
                                            counted, in reliability/results/soak.json
    python -m reliability storm [--clients N] [--turned-away K] [--max-reconnect-delay S]
                                [--client-timeout T] [--sdk js|python]
                                [--server rotary|centrifugo]
                                            N clients (default 10,000) of a killed node come
                                            back at once past a rate limit K short of N, their
                                            SDK's backoff capped at S and its timeout T (default
                                            20 s and 5 s, the SDK's), the SDK centrifuge-js
                                            (default) or centrifuge-python, against rotary
                                            (default) or Centrifugo, in
                                            reliability/results/storm.json
    python -m reliability all               seed, fuzz, faults, soak, storm, then report
    python -m reliability report            regenerate docs/reliability.md from the results

The suite runs the short variant of each (tests/reliability/).
"""

from __future__ import annotations

import argparse
import sys

from reliability.faults import FAULT_SCENARIOS, run_faults, run_soak, run_storm
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
    fuzz.add_argument(
        "--max-seconds", type=int, default=0, help="stop each target after this long (0: never)"
    )
    fuzz.add_argument("targets", nargs="*", help="target names (default: all)")
    faults = commands.add_parser("faults", help="kill, pause and partition Redis and NATS under traffic")
    faults.add_argument("--cycles", type=int, default=10)
    faults.add_argument("scenarios", nargs="*", help=f"some of {sorted(FAULT_SCENARIOS)}; default: all")
    soak = commands.add_parser("soak", help="connections churning while publications flow")
    soak.add_argument("--connections", type=int, default=10_000)
    soak.add_argument("--ticks", type=int, default=40)
    storm = commands.add_parser("storm", help="a killed node's clients all coming back at once")
    storm.add_argument("--clients", type=int, default=10_000)
    storm.add_argument("--turned-away", type=int, default=60, help="clients beyond the rate limit")
    storm.add_argument(
        "--max-reconnect-delay",
        type=float,
        default=20.0,
        help="cap of the SDK's reconnect backoff in seconds (default: the SDK's own, 20)",
    )
    storm.add_argument(
        "--client-timeout",
        type=float,
        default=5.0,
        help="the SDK's timeout for a handshake, connect or subscribe (default: the SDK's own, 5)",
    )
    storm.add_argument(
        "--sdk",
        choices=["js", "python"],
        default="js",
        help="the crowd's SDK: centrifuge-js in Node (default) or centrifuge-python",
    )
    storm.add_argument(
        "--server",
        choices=["rotary", "centrifugo"],
        default="rotary",
        help="the nodes: rotary (default) or Centrifugo v6.9.1 with the same config, for comparison",
    )
    commands.add_parser("all", help="seed, fuzz, faults, soak, storm, then report")
    commands.add_parser("report", help="regenerate docs/reliability.md")
    args = parser.parse_args(argv)
    if args.command == "seed":
        write_seeds()
        return 0
    if args.command == "fuzz":
        return 0 if fuzz_all(args.targets, args.inputs, args.jobs, args.max_seconds) else 1
    if args.command == "faults":
        unknown = set(args.scenarios) - set(FAULT_SCENARIOS)
        if unknown:
            parser.error(f"unknown fault scenarios {sorted(unknown)}; known: {sorted(FAULT_SCENARIOS)}")
        return 0 if run_faults(args.cycles, args.scenarios) else 1
    if args.command == "soak":
        return 0 if run_soak(args.connections, args.ticks) else 1
    if args.command == "storm":
        options = (args.max_reconnect_delay, args.client_timeout, args.sdk, args.server)
        held = run_storm(args.clients, args.turned_away, *options)
        return 0 if held else 1
    if args.command == "all":
        write_seeds()
        ok = fuzz_all([], 1_000_000) & run_faults(10) & run_soak(10_000, 40) & run_storm(10_000, 60)
        write_report()
        return 0 if ok else 1
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
