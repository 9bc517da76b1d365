"""Memory per idle subscribed WebSocket connection, and what it is made of (issue 15, point 2).

Starts rotary under tracemalloc (``--serve`` runs the ``rotary`` command in this file's process with a
SIGUSR1 handler that collects garbage and writes a snapshot), connects ``--connections`` picows
subscribers (connect with an HS256 JWT, subscribe to one channel), waits, and compares the snapshots
taken before and after. It prints the server's RSS growth per connection and the Python allocations
per connection by site, the loop's timer handles and the garbage collector's tracked objects per
connection; then it waits ``--idle`` seconds and measures again, so growth with idle time shows up.
Run from the repository root: ``.venv/bin/python bench/conn_memory.py --connections 10000``.
tracemalloc slows the server down and adds its own bookkeeping, so RSS is measured in a second run
without it (``--no-trace``); the per-site figures are Python's own allocations, without that overhead.
See https://centrifugal.dev/docs/transports/websocket.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Stats, close_subscribers, connect_subscribers
from system import free_port, raise_nofile, rss_bytes, wait_listening

SECRET = "bench-hmac-secret-not-for-production"
CHANNEL = "bench"
FRAMES = 8
KEEP = ("/rotary/", "/aiohttp/", "/multidict/", "/yarl/", "/picows/", "/asyncio/")
"""Allocation sites are named by the innermost frame in one of these, so a dict made by dataclasses
or a list grown by the codec is charged to the code that asked for it."""


def census() -> dict[str, int]:
    """Objects the collector tracks, and the loop's timers (uvloop keeps no list of them, so the
    rotary clients' own timers are counted, plus asyncio's ``_scheduled`` where the loop has one)."""
    gc.collect()
    loop = asyncio.get_event_loop()
    scheduled = getattr(loop, "_scheduled", None)
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    from rotary.node.client import Client

    clients = [o for o in gc.get_objects() if type(o) is Client]
    return {
        "gc_objects": sum(counts.values()),
        "loop_scheduled": len(scheduled) if scheduled is not None else -1,
        "clients": len(clients),
        "client_deadline_timers": clients[0].node.deadlines.timers if clients else 0,
        "tasks": len(asyncio.all_tasks(loop)),
        **{f"type:{name}": n for name, n in counts.most_common(40)},
    }


def serve(argv: list[str], out: Path) -> int:
    """The server side: rotary with tracemalloc, writing a snapshot and a census on each SIGUSR1."""
    from rotary.server.cli import main

    trace = os.environ.get("CONN_MEMORY_TRACE") == "1"
    taken = 0

    def dump(_sig: int, _frame: object) -> None:
        nonlocal taken
        taken += 1
        data = census()
        if trace and not tracemalloc.is_tracing():  # from the first snapshot on: tracing slows start-up
            tracemalloc.start(FRAMES)
        if trace:
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            (out / f"snap-{taken}.pickle").write_bytes(pickle.dumps(snap))
        (out / f"census-{taken}.json").write_text(json.dumps(data))

    signal.signal(signal.SIGUSR1, dump)
    return main(argv)


def site(trace: tracemalloc.Traceback) -> str:
    for frame in reversed(trace):  # a Traceback runs from the oldest frame to the most recent
        if any(part in frame.filename for part in KEEP):
            name = frame.filename.split("/site-packages/")[-1].split("/src/")[-1]
            return f"{name}:{frame.lineno}"
    frame = trace[-1]
    return f"{frame.filename}:{frame.lineno}"


def by_site(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> Counter[str]:
    grown: Counter[str] = Counter()
    for stat in after.compare_to(before, "traceback"):
        grown[site(stat.traceback)] += stat.size_diff
    return grown


async def snapshot(process: subprocess.Popen[bytes], out: Path, number: int) -> dict[str, Any]:
    process.send_signal(signal.SIGUSR1)
    path = out / f"census-{number}.json"
    while not path.exists():
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    return {"rss": rss_bytes(process.pid), **json.loads(path.read_text())}


async def measure(args: argparse.Namespace, trace: bool) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rotary-conn-memory-") as tmp:
        out = Path(tmp)
        config = {
            "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"]},
            "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
            "http_api": {"key": "k"},
            "http_server": {"port": port},
            "log": {"level": "error"},
        }
        (out / "config.json").write_text(json.dumps(config))
        env = {**os.environ, "CONN_MEMORY_TRACE": "1" if trace else "0"}
        command = [sys.executable, __file__, "--serve", str(out), "-c", str(out / "config.json")]
        process = subprocess.Popen(command, env=env)
        try:
            wait_listening(port, process, 60)
            token = jwt.encode({"sub": "bench"}, SECRET, algorithm="HS256")
            url = f"ws://127.0.0.1:{port}/connection/websocket"
            stats = Stats()
            # A few connections first, so that lazy imports and caches are in the baseline.
            await close_subscribers(await connect_subscribers(url, 20, token, CHANNEL, stats))
            await asyncio.sleep(1)
            base = await snapshot(process, out, 1)
            count = args.traced_connections if trace else args.connections
            # Under tracemalloc a handshake is many times slower: fewer at a time, or picows' 5 s
            # handshake timeout fires.
            transports = await connect_subscribers(
                url,
                count,
                token,
                CHANNEL,
                stats,
                concurrency=4 if trace else 64,
                timeout=1800,
                handshake_timeout=120 if trace else 30,
            )
            await asyncio.sleep(2)
            connected = await snapshot(process, out, 2)
            await asyncio.sleep(args.idle)
            idle = await snapshot(process, out, 3)
            await close_subscribers(transports)
            result: dict[str, Any] = {"count": count, "base": base, "connected": connected, "idle": idle}
            if trace:
                snaps = [pickle.loads((out / f"snap-{i}.pickle").read_bytes()) for i in (1, 2, 3)]
                result["sites"] = by_site(snaps[0], snaps[1])
                result["traced"] = [sum(s.size for s in snap.statistics("filename")) for snap in snaps]
                result["idle_sites"] = by_site(snaps[1], snaps[2])
            return result
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def report(args: argparse.Namespace, plain: dict[str, Any], traced: dict[str, Any] | None) -> str:
    n = args.connections
    lines = [f"connections: {n}, idle wait {args.idle:.0f}s, load average {os.getloadavg()[0]:.1f}"]
    for label, key in (("connected", "connected"), ("after idle", "idle")):
        rss = (plain[key]["rss"] - plain["base"]["rss"]) / n
        lines.append(f"RSS per connection ({label}, no tracemalloc): {rss / 1024:.2f} KiB ({rss:.0f} B)")
    for label, key in (("connected", "connected"), ("after idle", "idle")):
        c, b = plain[key], plain["base"]
        lines.append(
            f"{label}: gc objects/conn {(c['gc_objects'] - b['gc_objects']) / n:.1f}, "
            f"tasks {c['tasks']}, deadline timers {c['client_deadline_timers']}, "
            f"loop _scheduled {c['loop_scheduled']}"
        )
    if traced is None:
        return "\n".join(lines)
    traced_bytes = traced["traced"]
    n = traced["count"]
    lines.append(f"tracemalloc run: {n} connections")
    lines.append(
        f"traced Python allocations per connection: {(traced_bytes[1] - traced_bytes[0]) / n:.0f} B "
        f"(after idle {(traced_bytes[2] - traced_bytes[0]) / n:.0f} B)"
    )
    lines.append("by site (bytes per connection, >= 16):")
    for name, size in sorted(traced["sites"].items(), key=lambda kv: -kv[1]):
        if size / n >= 16:
            lines.append(f"  {size / n:8.0f}  {name}")
    growth = {k: round(v / n, 1) for k, v in traced["idle_sites"].items() if abs(v) / n >= 8}
    lines.append(f"growth while idle (bytes per connection, >= 8): {growth or 'none'}")
    connected, base = plain["connected"], plain["base"]
    n = plain["count"]
    kinds = {
        k: (connected.get(k, 0) - base.get(k, 0)) / n
        for k in connected
        if k.startswith("type:") and (connected.get(k, 0) - base.get(k, 0)) / n >= 0.5
    }
    lines.append(
        "gc-tracked objects per connection by type: "
        + ", ".join(f"{k[5:]} {v:.1f}" for k, v in kinds.items())
    )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    raise_nofile(2 * args.connections + 1024)
    plain = await measure(args, trace=False)
    traced = None if args.no_trace else await measure(args, trace=True)
    text = report(args, plain, traced)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        return serve(sys.argv[3:], Path(sys.argv[2]))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument(
        "--traced-connections", type=int, default=2000, help="connections of the tracemalloc run"
    )
    parser.add_argument("--idle", type=float, default=30.0, help="seconds idle before the last snapshot")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-trace", action="store_true", help="RSS, objects and timers only")
    args = parser.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
