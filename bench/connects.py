"""Connect + subscribe rate: rotary with HS256 and RS256 JWTs beside the picows floor (issue 15, point 1).

Each round starts every target fresh, pinned to the server CPU (this process, the load generator, on
the other), and opens ``--clients`` WebSocket clients, ``--in-flight`` at a time. Each client sends
``connect`` (with its JWT, or none), then ``subscribe`` to one channel, and counts once the subscribe
reply arrived. Every client has its own token (its own ``sub``), as real users do, so a cache keyed
by the token string cannot make the figure: ``--same-token`` gives all of them one token instead, the
case of a client reconnecting with the token it already used.

Targets: ``floor`` (floor_server.py: no authentication, no checks), ``rotary-anon`` (anonymous
connect, ``client.allow_anonymous_connect_without_token``), ``rotary-hs256`` and ``rotary-rs256``.
The report gives connects per second and server CPU per connect + subscribe, medians over the rounds,
and each target's ratio to the floor's rate and CPU. Targets (issue 15): HS256 at least 0.7x the
floor's rate, RS256 at least 0.5x. See https://centrifugal.dev/docs/server/authentication.
Run from the repository root: ``.venv/bin/python bench/connects.py --rounds 3``. With
BENCH_PYSPY=<py-spy binary>, py-spy samples the server during the connects (as in fanout.py); read
the stacks with bench/stacks.py. With BENCH_PROFILE=<dir>, rotary runs under cProfile
(profiled_rotary.py); the stats include its start and stop. With ``--callgrind``, rotary runs under
valgrind's callgrind, instrumented only while the measured clients connect (after a warm-up), and
the report adds its instructions per connect + subscribe (user space only, no syscalls): unlike CPU
time, a count that other load on the host does not change, for before/after runs on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from picows import ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout import (
    SECRET,
    Meter,
    Target,
    prepare_host,
    server_config,
    start_floor,
    start_sampler,
    stop_sampler,
)
from loadgen import Stats, Subscriber, close_subscribers
from report import save
from system import free_port, pinned_command, wait_listening

CHANNEL = "bench"
ROTARY_TARGETS = ("rotary-anon", "rotary-hs256", "rotary-rs256")
TARGETS = (
    "floor",
    *ROTARY_TARGETS,
    *(f"{name}@aiohttp" for name in ROTARY_TARGETS),
    *(f"{name}-alt" for name in ROTARY_TARGETS),
)
"""``@aiohttp``: the same server with ``ROTARY_WEBSOCKET_SERVER=aiohttp`` (aiohttp's WebSocket handler
after the upgrade instead of rotary's own protocol, ARCHITECTURE.md decision 27). ``-alt``: rotary
imported from the source tree BENCH_ALT_SRC (another checkout's ``src``), beside this one's in the
same run, for a before/after comparison with interleaved rounds."""
RATE_TARGETS = {"rotary-hs256": 0.7, "rotary-rs256": 0.5}
"""Issue 15: connect + subscribe rate with each kind of JWT, as a share of the floor's."""


class Keys:
    """The RSA key pair of the RS256 target, made once per run."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


def start_rotary_variant(
    target: str,
    keys: Keys,
    cpus: set[int] | None,
    workdir: Path,
    callgrind: Path | None = None,
    client_settings: dict[str, Any] | None = None,
) -> Target:
    """Starts rotary for ``target``; ``client_settings`` go into the config's ``client`` section."""
    name, _, websocket_server = target.partition("@")
    alt = name.endswith("-alt")
    name = name.removesuffix("-alt")
    port = free_port()
    token: dict[str, Any] = {"hmac_secret_key": SECRET}
    client: dict[str, Any] = {"allowed_origins": ["*"], **(client_settings or {})}
    if name == "rotary-rs256":
        token = {"rsa_public_key": keys.public_pem}
    if name == "rotary-anon":
        client["allow_anonymous_connect_without_token"] = True
    channel = {
        "without_namespace": {"allow_subscribe_for_client": True, "allow_subscribe_for_anonymous": True}
    }
    path = server_config(workdir, name, port, client={**client, "token": token}, channel=channel)
    command = [str(Path(sys.executable).parent / "rotary"), "-c", str(path)]
    if os.environ.get("BENCH_PROFILE"):
        profiled = str(Path(__file__).resolve().parent / "profiled_rotary.py")
        command = [sys.executable, profiled, "-c", str(path)]
    if callgrind is not None:
        valgrind = [
            "valgrind",
            "-q",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={callgrind}",
        ]
        command = [*valgrind, *command]
    env = dict(os.environ)
    if websocket_server:
        env["ROTARY_WEBSOCKET_SERVER"] = websocket_server
    if os.environ.get("BENCH_ROTARY_SRC"):
        env["PYTHONPATH"] = os.environ["BENCH_ROTARY_SRC"]
    if alt:
        env["PYTHONPATH"] = os.environ["BENCH_ALT_SRC"]
    process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir, env=env)
    wait_listening(port, process, 90.0 if callgrind is None else 900.0)
    return Target(
        target, process, f"ws://127.0.0.1:{port}/connection/websocket", f"http://127.0.0.1:{port}/api"
    )


def tokens_for(name: str, keys: Keys, count: int, same: bool) -> list[str]:
    """One token per client (or one for all with ``same``), signed as the target expects."""
    name = name.partition("@")[0].removesuffix("-alt")
    if name in ("floor", "rotary-anon"):
        return [""] * count
    exp = int(time.time()) + 3600
    key: Any = keys.private if name == "rotary-rs256" else SECRET
    algorithm = "RS256" if name == "rotary-rs256" else "HS256"

    def sign(claims: dict[str, Any]) -> str:
        return jwt.encode(claims, key, algorithm=algorithm)

    if same:
        return [sign({"sub": "bench", "exp": exp})] * count
    return [sign({"sub": f"user-{i}", "exp": exp}) for i in range(count)]


async def connect_all(
    url: str, tokens: list[str], in_flight: int, handshake_timeout: float = 5.0
) -> list[Any]:
    """Every client connects and subscribes, ``in_flight`` at a time; returns their transports."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(in_flight)
    stats = Stats()

    async def one(token: str) -> Any:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            transport, _ = await ws_connect(
                lambda: Subscriber(token, CHANNEL, stats, ready),
                url,
                enable_auto_pong=True,
                websocket_handshake_timeout=handshake_timeout,
            )
            await ready
            return transport

    return list(
        await asyncio.wait_for(asyncio.gather(*(one(t) for t in tokens)), 300 + 10 * handshake_timeout)
    )


async def measure(
    name: str, args: argparse.Namespace, keys: Keys, cpus: set[int] | None, workdir: Path
) -> dict[str, Any]:
    tokens = tokens_for(name, keys, args.clients, args.same_token)
    if args.callgrind:
        return await count_instructions(name, args, keys, tokens, workdir)
    if name == "floor":
        target = start_floor(cpus, workdir)
    else:
        target = start_rotary_variant(name, keys, cpus, workdir)
    try:
        await asyncio.sleep(0.5)
        sampler = start_sampler(target, args.clients)
        meter = Meter(target.process.pid)
        transports = await connect_all(target.ws_url, tokens, args.in_flight)
        row = meter.row(name, args.clients, "connect+subscribe", args.clients)
        stop_sampler(sampler)
        await close_subscribers(transports)
        return row
    finally:
        target.stop()


NO_PINGS = {"ping_interval": "3600s"}
"""Client settings for counts under callgrind: pings (and their pongs) come per connection and
second, not per connect or delivery, and callgrind runs slow enough, stretched further by the host's
other load, for them to make a count depend on that load."""

CALLGRIND_WARMUP = 50
"""Clients connected before instrumenting: the first connections import and cache what later ones reuse."""


async def count_instructions(
    name: str, args: argparse.Namespace, keys: Keys, tokens: list[str], workdir: Path
) -> dict[str, Any]:
    """Instructions the server runs per connect + subscribe, counted by callgrind (``--callgrind``)."""
    out = workdir / f"callgrind-{name}.out"
    target = start_rotary_variant(name, keys, None, workdir, callgrind=out, client_settings=NO_PINGS)
    try:
        warm = await connect_all(target.ws_url, tokens_for(name, keys, CALLGRIND_WARMUP, False), 10, 120)
        await close_subscribers(warm)
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(target.process.pid)], check=True, capture_output=True)
        started = time.monotonic()
        transports = await connect_all(target.ws_url, tokens, args.in_flight, 120)
        wall = time.monotonic() - started
        subprocess.run([*control, "off", str(target.process.pid)], check=True, capture_output=True)
        await close_subscribers(transports)
    finally:
        target.stop()
    totals = [int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:")]
    per_op = max(totals, default=0) / args.clients
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, args.keep / out.name)
    return {
        "subscribers": args.clients,
        "measure": "connect+subscribe",
        "server": name,
        "operations": args.clients,
        "per_s": args.clients / wall,
        "server_cpu_us_per_op": float("nan"),
        "server_ir_per_op": per_op,
        "server_cpu_share": float("nan"),
        "generator_cpu_share": float("nan"),
        "other_cpu_share": float("nan"),
    }


def summarise(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    by_target: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_target.setdefault(row["server"], []).append(row)
    med = {
        name: {
            "per_s": statistics.median(r["per_s"] for r in group),
            "us": statistics.median(r["server_cpu_us_per_op"] for r in group),
            "other": statistics.median(r["other_cpu_share"] for r in group),
            "gen": statistics.median(r["generator_cpu_share"] for r in group),
        }
        for name, group in by_target.items()
    }
    floor = med.get("floor")
    header = "target                  connects/s  srv us each  gen CPU  other CPU  rate/floor  CPU/floor"
    lines = [header + "  target"]
    summary = []
    for name, m in med.items():
        rate = m["per_s"] / floor["per_s"] if floor else float("nan")
        cpu = m["us"] / floor["us"] if floor else float("nan")
        goal = RATE_TARGETS.get(name)  # rotary's default server only
        lines.append(
            f"{name:23} {m['per_s']:10.0f} {m['us']:12.0f} {m['gen']:8.0%} {m['other']:10.0%}"
            f" {rate:10.2f}x {cpu:9.2f}x  {'' if goal is None else f'>= {goal}x'}"
        )
        summary.append({"server": name, **m, "rate_ratio": rate, "cpu_ratio": cpu, "rate_target": goal})
    rounds = ", ".join(
        f"{name}: " + " ".join(f"{r['per_s']:.0f}/s {r['server_cpu_us_per_op']:.0f}us" for r in group)
        for name, group in by_target.items()
    )
    lines.append(f"rounds: {rounds}")
    counted = {
        name: [r["server_ir_per_op"] for r in group if "server_ir_per_op" in r]
        for name, group in by_target.items()
    }
    for name, counts in counted.items():
        if counts:
            each = " ".join(f"{c / 1e3:.0f}" for c in counts)
            lines.append(
                f"{name}: {statistics.median(counts) / 1e3:.0f} k instructions each (rounds: {each})"
            )
    return summary, "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    _, cpus = prepare_host(args.clients)
    keys = Keys()
    rows: list[dict[str, Any]] = []
    loads = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="rotary-connects-") as tmp:
        for round_ in range(1, args.rounds + 1):
            for name in args.targets:
                row = await measure(name, args, keys, cpus, Path(tmp))
                rows.append({**row, "round": round_})
                loads.append(os.getloadavg())
                counted = f", {row['server_ir_per_op'] / 1e3:.0f} k instructions" if args.callgrind else ""
                print(
                    f"  round {round_} {name}: {row['per_s']:.0f}/s, {row['server_cpu_us_per_op']:.0f} us "
                    f"server CPU each, other CPU {row['other_cpu_share']:.0%}{counted}",
                    flush=True,
                )
    summary, text = summarise(rows)
    text += f"\nload averages: {' '.join(f'{la[0]:.1f}' for la in loads)}"
    result = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rows": rows,
        "summary": summary,
        "loads": loads,
    }
    save(result, text, args.out, "connects")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--same-token", action="store_true", help="every client sends the same token")
    parser.add_argument(
        "--callgrind", action="store_true", help="count rotary's instructions under callgrind (no floor)"
    )
    parser.add_argument(
        "--keep", type=Path, help="with --callgrind: copy each target's callgrind output into this directory"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    if args.callgrind and "floor" in args.targets:
        parser.error("--callgrind counts rotary's instructions: leave out the floor")
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    sys.exit(main())
