"""Fan-out benchmark: N WebSocket subscribers on one channel, publications through the HTTP API.

For each subscriber count it runs rotary, a minimal picows broadcast server (the floor, see
floor_server.py) and Centrifugo itself in turn, each in its own process pinned to its own CPU, with
this process (the load generator) on the other. Two scenarios per server: *steady* (publications at
a fixed rate) and *burst* (a ``batch`` of publications at a fixed interval). It reports deliveries
per second, latency percentiles, server CPU microseconds per delivery and rotary/floor and
rotary/Centrifugo ratios. For rotary and Centrifugo it also measures memory per idle connection,
connects per second with a JWT and HTTP API publishes per second. The ``rotary-<transport>`` targets
run rotary with subscribers on another transport (SSE and HTTP-streaming emulation, uni_websocket,
uni_sse, uni_http_stream, SockJS's websocket sub-transport; see transport_clients.py), reported as
ratios to bidirectional WebSocket; ``rotary-asgi`` has its WebSocket subscribers on the ASGI mount
under uvicorn (asgi_rotary.py). It prints a table and writes JSON under bench/results/. See
bench/README.md; the fan-out model is described at https://centrifugal.dev/docs/getting-started/design.

Run from the repository root: ``.venv/bin/python bench/fanout.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Publisher, Stats, close_subscribers, connect_subscribers
from rawclients import ApiHammer
from report import (
    BASELINES,
    describe_extra,
    extra_ratios,
    metrics_ratios,
    ratios,
    render_report,
    save,
    transport_ratios,
    webtransport_ratios,
)
from system import (
    cpu_layout,
    cpu_ns,
    free_port,
    host_busy_ns,
    own_cpu_ns,
    pinned_command,
    raise_backlogs,
    raise_nofile,
    rss_bytes,
    wait_listening,
)
from transport_clients import connect_transport
from wtclients import connect_wt_subscribers

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CHANNEL = "bench"
SECRET = "bench-hmac-secret-not-for-production"
API_KEY = "bench-api-key"
DRAIN_IDLE_S = 2.0
GO_DEPS = ROOT / "tests" / "tools" / "go-deps"
API_CHANNEL = "bench-api"
"""The API throughput rows publish here, where nobody subscribes: they measure the API, not fan-out."""
SETTLE_S = 1.0


@dataclass
class Target:
    """A running server under test."""

    name: str
    process: subprocess.Popen[bytes]
    ws_url: str
    api_url: str
    webtransport_port: int | None = None
    """Set when the subscribers connect over WebTransport (HTTP/3 on this UDP port) instead."""
    transport: str = "websocket"
    """How subscribers connect: bidirectional WebSocket, or one of transport_clients' kinds."""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_floor(cpus: set[int] | None, workdir: Path) -> Target:
    command = pinned_command([sys.executable, str(BENCH / "floor_server.py")], cpus)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=workdir)
    assert process.stdout is not None
    ports = json.loads(process.stdout.readline())
    return Target(
        "floor",
        process,
        f"ws://127.0.0.1:{ports['ws_port']}/connection/websocket",
        f"http://127.0.0.1:{ports['api_port']}/api",
    )


def server_config(workdir: Path, name: str, port: int, metrics: bool = False, **more: Any) -> Path:
    """The one config file rotary and Centrifugo both get: memory engine (the default), HMAC JWTs,
    subscriptions to the namespace-free channel, an API key. Only the listening port differs, and
    ``metrics`` turns Prometheus on (the rotary-metrics server)."""
    config: dict[str, Any] = {
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"]},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
        "http_api": {"key": API_KEY},
        "http_server": {"port": port},
        "log": {"level": "error"},
        **more,
    }
    if metrics:
        config["prometheus"] = {"enabled": True}
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def start_rotary(
    cpus: set[int] | None,
    workdir: Path,
    transport: str = "websocket",
    metrics: bool = False,
    alt: bool = False,
) -> Target:
    """Starts ``rotary``; with BENCH_PROFILE=<dir> it runs under cProfile (see profiled_rotary.py).

    With another ``transport`` than bidirectional WebSocket, the config also turns that transport on
    (rotary's SockJS section for ``sockjs``), and the target's subscribers use it.
    With ``metrics``, Prometheus is on (the target ``rotary-metrics``). With ``alt``, rotary is
    imported from BENCH_ALT_SRC, as ``rotary-alt`` is (the targets ``rotary-<transport>-alt``)."""
    port = free_port()
    path = server_config(workdir, "rotary-metrics" if metrics else "rotary", port, metrics)
    if transport != "websocket":
        config = json.loads(path.read_text())
        config[transport] = {"enabled": True}
        if transport in ("http_stream", "sse"):
            # The bench's emulation clients never answer pings (a pong is a POST to /emulation).
            config["client"]["ping_interval"] = "600s"
        path = workdir / f"rotary-{transport}.json"
        path.write_text(json.dumps(config))
    args = ["-c", str(path)]
    if os.environ.get("BENCH_PROFILE"):
        command = [sys.executable, str(BENCH / "profiled_rotary.py"), *args]
    else:
        command = [str(Path(sys.executable).parent / "rotary"), *args]
    env = {**os.environ, "PYTHONPATH": os.environ["BENCH_ALT_SRC"]} if alt else None
    process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir, env=env)
    wait_listening(port, process)
    name = "rotary" if transport == "websocket" else f"rotary-{transport}"
    if metrics:
        name = "rotary-metrics"
    if alt:
        name += "-alt"
    ws_url, api_url = f"ws://127.0.0.1:{port}/connection/websocket", f"http://127.0.0.1:{port}/api"
    return Target(name, process, ws_url, api_url, transport=transport)


def rotary_over(transport: str, alt: bool = False) -> Callable[[set[int] | None, Path], Target]:
    def start(cpus: set[int] | None, workdir: Path) -> Target:
        return start_rotary(cpus, workdir, transport, alt=alt)

    return start


def start_rotary_deflate(cpus: set[int] | None, workdir: Path) -> Target:
    """rotary with `websocket.compression` on; its subscribers offer permessage-deflate, so every
    publication frame is compressed (once per fan-out group)."""
    port = free_port()
    config = server_config(workdir, "rotary-deflate", port, websocket={"compression": True})
    command = [str(Path(sys.executable).parent / "rotary"), "-c", str(config)]
    process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir)
    wait_listening(port, process)
    return Target(
        "rotary-deflate",
        process,
        f"ws://127.0.0.1:{port}/connection/websocket",
        f"http://127.0.0.1:{port}/api",
    )


def start_rotary_webtransport(cpus: set[int] | None, workdir: Path) -> Target:
    """rotary with HTTP/3 and WebTransport on (see webtransport_rotary.py), subscribers over WebTransport."""
    port = free_port()
    config = server_config(workdir, "rotary-webtransport", port)
    command = [sys.executable, str(BENCH / "webtransport_rotary.py"), str(config)]
    process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir)
    wait_listening(port, process)
    ws_url = f"ws://127.0.0.1:{port}/connection/websocket"
    return Target("rotary-webtransport", process, ws_url, f"https://127.0.0.1:{port}/api", port)


def asgi_under(name: str, uvicorn_settings: str, alt: bool = False) -> Starter:
    """rotary's node behind the ASGI mount under uvicorn (see asgi_rotary.py): the subscribers connect
    to uvicorn, publications go through the standalone server's HTTP API in the same process.
    ``uvicorn_settings`` is ``recommended`` (docs/fastapi.md) or ``defaults`` (uvicorn's own);
    ``alt`` imports rotary from BENCH_ALT_SRC, as ``rotary-alt`` does, for a before/after run."""

    def start(cpus: set[int] | None, workdir: Path) -> Target:
        port, asgi_port = free_port(), free_port()
        config = server_config(workdir, name, port)
        script = str(BENCH / "asgi_rotary.py")
        command = [sys.executable, script, str(config), str(asgi_port), uvicorn_settings]
        env = {**os.environ, "PYTHONPATH": os.environ["BENCH_ALT_SRC"]} if alt else None
        process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir, env=env)
        wait_listening(asgi_port, process)
        ws_url = f"ws://127.0.0.1:{asgi_port}/connection/websocket"
        return Target(name, process, ws_url, f"http://127.0.0.1:{port}/api")

    return start


def start_rotary_alt(cpus: set[int] | None, workdir: Path) -> Target:
    """rotary imported from the source tree BENCH_ALT_SRC (another checkout's ``src``), beside this
    one's in the same run: a before/after comparison with interleaved rounds."""
    port = free_port()
    path = server_config(workdir, "rotary-alt", port)
    command = [str(Path(sys.executable).parent / "rotary"), "-c", str(path)]
    env = {**os.environ, "PYTHONPATH": os.environ["BENCH_ALT_SRC"]}
    process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir, env=env)
    wait_listening(port, process)
    ws_url, api_url = f"ws://127.0.0.1:{port}/connection/websocket", f"http://127.0.0.1:{port}/api"
    return Target("rotary-alt", process, ws_url, api_url)


def start_rotary_metrics(cpus: set[int] | None, workdir: Path) -> Target:
    """rotary with ``prometheus.enabled``: its fan-out rows beside plain rotary's price the counting."""
    return start_rotary(cpus, workdir, metrics=True)


def centrifugo_binary() -> str:
    """Centrifugo v6.9.1 as tests/tools/go-deps installs it (by module name, into .cache/go)."""
    done = subprocess.run([str(GO_DEPS)], capture_output=True, text=True, check=False)
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if done.returncode != 0 or "centrifugo" not in found:
        raise SystemExit(f"{GO_DEPS} could not provide Centrifugo: {done.stderr.strip()[-2000:]}")
    return found["centrifugo"]


def start_centrifugo(cpus: set[int] | None, workdir: Path) -> Target:
    """Starts Centrifugo on the server CPU; Go sizes GOMAXPROCS from that affinity mask, so 1 here."""
    port = free_port()
    command = [centrifugo_binary(), "-c", str(server_config(workdir, "centrifugo", port))]
    process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir)
    wait_listening(port, process)
    return Target(
        "centrifugo", process, f"ws://127.0.0.1:{port}/connection/websocket", f"http://127.0.0.1:{port}/api"
    )


def start_sampler(target: Target, subscribers: int) -> subprocess.Popen[bytes] | None:
    """With BENCH_PYSPY=<py-spy binary>, samples the server during the scenarios (not the connects).

    The collapsed stacks land in bench/results/pyspy-<server>-<N>.txt; py-spy lives in its own venv.
    """
    binary = os.environ.get("BENCH_PYSPY")
    if not binary:
        return None
    out = BENCH / "results" / f"pyspy-{target.name}-{subscribers}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            binary,
            "record",
            "-p",
            str(target.process.pid),
            "-r",
            "250",
            "--native",
            "--format",
            "raw",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
    )


def stop_sampler(sampler: subprocess.Popen[bytes] | None) -> None:
    if sampler is not None:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(30)


Starter = Callable[[set[int] | None, Path], Target]
TRANSPORTS = ("sse", "http_stream", "uni_websocket", "uni_sse", "uni_http_stream", "sockjs")
"""Transports measured beside bidirectional WebSocket, each as the target ``rotary-<transport>``."""
STARTERS: dict[str, Starter] = {
    "floor": start_floor,
    "rotary": start_rotary,
    "rotary-metrics": start_rotary_metrics,
    "centrifugo": start_centrifugo,
    "rotary-webtransport": start_rotary_webtransport,
    **{f"rotary-{transport}": rotary_over(transport) for transport in TRANSPORTS},
    **{f"rotary-{transport}-alt": rotary_over(transport, alt=True) for transport in TRANSPORTS},
    "rotary-deflate": start_rotary_deflate,
    "rotary-asgi": asgi_under("rotary-asgi", "recommended"),
    "rotary-asgi-defaults": asgi_under("rotary-asgi-defaults", "defaults"),
    "rotary-asgi-alt": asgi_under("rotary-asgi-alt", "recommended", alt=True),
    "rotary-alt": start_rotary_alt,
}
FULL_SERVERS = ("rotary", "centrifugo", "rotary-alt")
"""Servers that verify JWTs and serve the whole API: the connect, memory and API rows are theirs."""


@dataclass(frozen=True)
class Scenario:
    name: str
    duration: float
    interval: float
    burst: int
    burst_mode: str

    def describe(self) -> str:
        if self.burst == 1:
            return f"{1 / self.interval:.0f} publish/s"
        return f"{self.burst_mode} of {self.burst} every {self.interval}s"


async def drive(scenario: Scenario, publisher: Publisher) -> int:
    """Publishes on a fixed schedule for the scenario's duration; returns publications sent."""
    send: Callable[[], Awaitable[None]]
    if scenario.burst == 1:
        send = publisher.publish
    else:
        method = publisher.batch if scenario.burst_mode == "batch" else publisher.concurrent

        async def send() -> None:
            await method(scenario.burst)

    start = time.monotonic()
    count = 0
    for tick in range(int(scenario.duration / scenario.interval)):
        delay = start + tick * scenario.interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await send()
        count += scenario.burst
    return count


async def drain(stats: Stats, expected: int, deadline_s: float = 60.0) -> None:
    """Waits until every delivery arrived, or until none arrived for DRAIN_IDLE_S."""
    last_seen, last_change = stats.deliveries, time.monotonic()
    end = time.monotonic() + deadline_s
    while stats.deliveries < expected and time.monotonic() < end:
        await asyncio.sleep(0.01)
        if stats.deliveries != last_seen:
            last_seen, last_change = stats.deliveries, time.monotonic()
        elif time.monotonic() - last_change > DRAIN_IDLE_S:
            break


def percentile(ordered: list[int], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


async def run_scenario(
    target: Target, scenario: Scenario, subscribers: int, stats: Stats, publisher: Publisher
) -> dict[str, Any]:
    stats.reset()
    pid = target.process.pid
    host_before, cpu_before, own_before = host_busy_ns(), cpu_ns(pid), own_cpu_ns()
    start = time.monotonic_ns()
    published = await drive(scenario, publisher)
    await drain(stats, published * subscribers)
    end = max(stats.last_receive.values(), default=time.monotonic_ns())
    cpu_used, own_used = cpu_ns(pid) - cpu_before, own_cpu_ns() - own_before
    others = host_busy_ns() - host_before - cpu_used - own_used
    wall = max(end - start, 1)
    ordered = sorted(stats.latencies)
    spans = sorted(t_end - t_pub for t_pub, t_end in stats.last_receive.items())
    delivered = stats.deliveries
    return {
        "subscribers": subscribers,
        "scenario": scenario.name,
        "server": target.name,
        "load": scenario.describe(),
        "publications": published,
        "deliveries": delivered,
        "lost": published * subscribers - delivered,
        "wall_s": wall / 1e9,
        "deliveries_per_s": delivered * 1e9 / wall,
        "fanout_per_s": subscribers * scenario.burst * 1e9 / spans[len(spans) // 2] if spans else 0.0,
        "latency_p50_ms": percentile(ordered, 0.50),
        "latency_p99_ms": percentile(ordered, 0.99),
        "latency_max_ms": ordered[-1] / 1e6 if ordered else float("nan"),
        "server_cpu_s": cpu_used / 1e9,
        "server_cpu_share": cpu_used / wall,
        "server_cpu_us_per_delivery": cpu_used / 1e3 / delivered if delivered else float("nan"),
        "generator_cpu_share": own_used / wall,
        "other_cpu_share": max(0, others) / wall,
    }


class Meter:
    """CPU of the server, of this generator and of everything else, over one measured window."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._start = time.monotonic_ns()
        self._host, self._cpu, self._own = host_busy_ns(), cpu_ns(pid), own_cpu_ns()

    def row(self, server: str, subscribers: int, measure: str, operations: int) -> dict[str, Any]:
        wall = max(time.monotonic_ns() - self._start, 1)
        cpu_used, own_used = cpu_ns(self._pid) - self._cpu, own_cpu_ns() - self._own
        others = host_busy_ns() - self._host - cpu_used - own_used
        return {
            "subscribers": subscribers,
            "measure": measure,
            "server": server,
            "operations": operations,
            "per_s": operations * 1e9 / wall,
            "server_cpu_us_per_op": cpu_used / 1e3 / operations if operations else float("nan"),
            "server_cpu_share": cpu_used / wall,
            "generator_cpu_share": own_used / wall,
            "other_cpu_share": max(0, others) / wall,
        }


async def measure_connects(target: Target, subscribers: int, count: int, token: str) -> dict[str, Any]:
    """``count`` fresh clients send ``connect`` with the JWT, 64 at a time; timed until every reply."""
    meter = Meter(target.process.pid)
    transports = await connect_subscribers(target.ws_url, count, token, None, Stats())
    row = meter.row(target.name, subscribers, "connect", count)
    await close_subscribers(transports)
    return row


async def measure_api(target: Target, subscribers: int, args: argparse.Namespace) -> dict[str, Any]:
    """``publish`` calls from a fixed number of keep-alive connections, one in flight on each."""
    hammer = ApiHammer(target.api_url, API_KEY, API_CHANNEL, args.api_connections)
    meter = Meter(target.process.pid)
    await hammer.run(args.api_duration)
    if hammer.stats.errors:
        print(f"  {target.name}: {hammer.stats.errors} API errors, first: {hammer.stats.first_error}")
    return meter.row(target.name, subscribers, "api publish", hammer.stats.responses)


def memory_row(server: str, subscribers: int, before: int, after: int) -> dict[str, Any]:
    return {
        "subscribers": subscribers,
        "measure": "idle memory",
        "server": server,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "kib_per_connection": (after - before) / 1024 / subscribers,
    }


async def bench_target(
    name: str, subscribers: int, args: argparse.Namespace, cpus: set[int] | None, workdir: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fan-out rows, and for rotary and Centrifugo the connect, memory and API rows, of one server."""
    target = STARTERS[name](cpus, workdir)
    full = name in FULL_SERVERS
    stats = Stats()
    token = jwt.encode({"sub": "bench"}, SECRET, algorithm="HS256")
    publisher = Publisher(target.api_url, API_KEY, CHANNEL)
    extras: list[dict[str, Any]] = []
    try:
        rss_before = rss_bytes(target.process.pid)
        began = time.monotonic()
        if target.webtransport_port is not None:
            sessions = await connect_wt_subscribers(
                target.webtransport_port, subscribers, token, CHANNEL, stats
            )
            close = sessions.aclose
        else:
            close = await open_subscribers(target, subscribers, token, stats)
        print(f"  {name}: {subscribers} subscribers ready in {time.monotonic() - began:.1f}s", flush=True)
        await asyncio.sleep(SETTLE_S)
        if full:
            extras.append(memory_row(name, subscribers, rss_before, rss_bytes(target.process.pid)))
        await run_scenario(target, Scenario("warmup", 1.0, 0.05, 1, "batch"), subscribers, stats, publisher)
        sampler = start_sampler(target, subscribers)
        results = [
            await run_scenario(target, s, subscribers, stats, publisher)
            for s in build_scenarios(args, subscribers)
        ]
        stop_sampler(sampler)
        for row in results:
            print(
                f"  {name} {row['scenario']}: {row['deliveries']} deliveries, "
                f"{row['server_cpu_us_per_delivery']:.2f} us/delivery",
                flush=True,
            )
        if stats.errors:
            print(f"  {name}: {len(stats.errors)} errors, first: {stats.errors[0]}", flush=True)
        if full:
            extras.append(await measure_api(target, subscribers, args))
        await close()
        if full:
            try:
                extras.append(await measure_connects(target, subscribers, args.connect_clients, token))
            except TimeoutError:  # a loaded host: the fan-out rows above still stand
                print(f"  {name}: connect rate not measured: handshakes timed out", flush=True)
        for row in extras:
            print(f"  {name} {row['measure']}: {describe_extra(row)}", flush=True)
        return results, extras
    finally:
        await publisher.close()
        target.stop()


def connect_timeout(subscribers: int) -> float:
    """Seconds to open every subscriber: 5000 took 52 s on the shared 2-core host, past a flat 60 s."""
    return max(60.0, subscribers * 0.03)


async def open_subscribers(
    target: Target, subscribers: int, token: str, stats: Stats
) -> Callable[[], Awaitable[None]]:
    """Connects and subscribes the target's subscribers; returns how to close them."""
    if target.transport == "websocket":
        deflate = target.name.endswith("-deflate")
        transports = await connect_subscribers(
            target.ws_url,
            subscribers,
            token,
            CHANNEL,
            stats,
            deflate=deflate,
            timeout=connect_timeout(subscribers),
        )
        return lambda: close_subscribers(transports)
    base_url = target.api_url.removesuffix("/api")
    if target.transport != "sockjs":  # subscribed by the server, from the token
        token = jwt.encode({"sub": "bench", "channels": [CHANNEL]}, SECRET, algorithm="HS256")
    return await connect_transport(target.transport, base_url, subscribers, token, CHANNEL, stats)


def build_scenarios(args: argparse.Namespace, subscribers: int) -> list[Scenario]:
    rate = max(1.0, args.steady_deliveries / subscribers)
    return [
        Scenario("steady", args.duration, 1 / rate, 1, "batch"),
        Scenario("burst", args.duration, args.burst_interval, args.burst_size, args.burst_mode),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument(
        "--servers", nargs="+", choices=sorted(STARTERS), default=["floor", "rotary", "centrifugo"]
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of publishing per scenario")
    parser.add_argument(
        "--steady-deliveries",
        type=float,
        default=50_000,
        help="target deliveries/s of the steady scenario (publish rate = this / N)",
    )
    parser.add_argument("--burst-size", type=int, default=10, help="publications per burst")
    parser.add_argument("--burst-interval", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument("--burst-mode", choices=["batch", "concurrent"], default="batch")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat everything, interleaved; ratios use the median of the rounds",
    )
    parser.add_argument(
        "--connect-clients", type=int, default=2000, help="clients of the connect-rate measurement"
    )
    parser.add_argument("--api-connections", type=int, default=16, help="concurrent API publish clients")
    parser.add_argument("--api-duration", type=float, default=3.0, help="seconds of API publishing")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    return parser.parse_args(argv)


def prepare_host(max_subscribers: int) -> tuple[set[int] | None, set[int] | None]:
    for warning in raise_backlogs():
        print(f"warning: {warning}", file=sys.stderr)
    limit = raise_nofile(2 * max_subscribers + 1024)
    if limit < max_subscribers + 256:
        print(
            f"warning: open-files limit {limit} is too low for {max_subscribers} subscribers", file=sys.stderr
        )
    generator_cpus, server_cpus = cpu_layout()
    if generator_cpus is None:
        print("warning: fewer than 2 CPUs; generator and server share one", file=sys.stderr)
    else:
        os.sched_setaffinity(0, generator_cpus)
    return generator_cpus, server_cpus


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    generator_cpus, server_cpus = prepare_host(max(args.subscribers))
    rows: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []
    loads = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="rotary-bench-") as tmp:
        for round_ in range(1, args.rounds + 1):
            for subscribers in args.subscribers:
                for name in args.servers:
                    results, more = await bench_target(name, subscribers, args, server_cpus, Path(tmp))
                    rows += [{**row, "round": round_} for row in results]
                    extras += [{**row, "round": round_} for row in more]
                    loads.append(os.getloadavg())
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "generator_cpus": sorted(generator_cpus or []),
        "server_cpus": sorted(server_cpus or []),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "load_averages": loads,
        "rows": rows,
        "extras": extras,
        "ratios": {baseline: ratios(rows, baseline) for baseline in BASELINES},
        "metrics_ratios": metrics_ratios(rows),
        "transport_ratios": transport_ratios(rows),
        "extra_ratios": extra_ratios(extras),
        "webtransport_ratios": webtransport_ratios(rows),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    save(result, render_report(result), args.out, "fanout")
    return 0


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sys.exit(main())
