"""Instructions rotary runs per delivery of the steady scenario, counted by callgrind (issue 15, point 3).

The steady scenario of fanout.py (one HTTP API publish per loop pass to N WebSocket subscribers)
measures server CPU time, which the host's other load makes noisy. Here rotary runs under valgrind's
callgrind, instrumented only while ``--publications`` publications go out one at a time (each
waits until all N subscribers received it), after the subscribers connected and a few warm-up
publications, with pings off: the count covers the API publish, the fan-out and uvloop's write
path, but not the kernel's write (callgrind counts user space only): rotary's own share of a
delivery.
Targets: ``rotary`` (this checkout) and ``rotary-alt`` (the source tree BENCH_ALT_SRC, e.g. main's
``src``), interleaved for a before/after comparison in one run. The callgrind outputs stay in the
work directory for callgrind_annotate. See https://centrifugal.dev/docs/getting-started/design.

Run from the repository root:
``BENCH_ALT_SRC=/work/main/src .venv/bin/python bench/fanout_ir.py --subscribers 1000``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from connects import NO_PINGS, Keys, start_rotary_variant
from fanout import API_KEY, CHANNEL, SECRET, connect_timeout, drain
from loadgen import Publisher, Stats, close_subscribers, connect_subscribers

WARMUP = 5
"""Publications before instrumenting: the first ones import and cache what later ones reuse."""


async def count(target_name: str, subscribers: int, publications: int, workdir: Path) -> float:
    """Instructions per delivery of ``target_name`` (``rotary`` or ``rotary-alt``)."""
    out = workdir / f"callgrind-{target_name}.out"
    name = "rotary-hs256" + ("-alt" if target_name.endswith("-alt") else "")
    target = start_rotary_variant(name, Keys(), None, workdir, callgrind=out, client_settings=NO_PINGS)
    stats = Stats()
    token = jwt.encode({"sub": "bench"}, SECRET, algorithm="HS256")
    publisher = Publisher(target.api_url, API_KEY, CHANNEL)
    try:
        transports = await connect_subscribers(
            target.ws_url, subscribers, token, CHANNEL, stats, timeout=connect_timeout(subscribers) * 20
        )
        for _ in range(WARMUP):
            stats.reset()
            await publisher.publish()
            await drain(stats, subscribers, 600.0)
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(target.process.pid)], check=True, capture_output=True)
        delivered = 0
        for _ in range(publications):
            stats.reset()
            await publisher.publish()
            await drain(stats, subscribers, 600.0)
            delivered += stats.deliveries
        subprocess.run([*control, "off", str(target.process.pid)], check=True, capture_output=True)
        await close_subscribers(transports)
    finally:
        await publisher.close()
        target.stop()
    totals = [int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:")]
    return max(totals, default=0) / max(delivered, 1)


async def main_async(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fanout-ir-"))
    print(f"callgrind outputs in {workdir}", flush=True)
    for target in args.targets:
        per_delivery = await count(target, args.subscribers, args.publications, workdir)
        print(f"{target}: {per_delivery:.0f} instructions per delivery", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", nargs="+", choices=("rotary", "rotary-alt"), default=["rotary"])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--publications", type=int, default=20)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
