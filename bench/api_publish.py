"""Server API publish throughput over HTTP and over GRPC, rotary beside Centrifugo, in one run.

Each server (``--servers``) starts from the same config (memory engine, an API key, the GRPC API on
its own port), pinned to the second CPU while this process, the load generator, keeps the first
(bench/system.py). Then, for ``--duration`` seconds each, one phase per API:

- **http**: ``--connections`` keep-alive HTTP/1.1 clients, each sending the next
  ``POST /api/publish`` as soon as the previous one is answered (rawclients.ApiHammer);
- **grpc**: as many GRPC calls in flight, ``CentrifugoApi.Publish`` through the stub generated from
  rotary's api.proto, spread over ``--grpc-channels`` HTTP/2 connections, each caller sending its
  next call as soon as the previous one is answered.

Publications go to a channel nobody subscribes to, so the rows measure the API, not fan-out. Each
row gives calls per second and the server's CPU time per call (schedstat, all threads): the second
figure does not depend on how fast the generator is, the first does (the Python GRPC client costs
more CPU per call than the raw HTTP one). ``--rounds`` alternate the servers; medians are printed.
Run: ``python bench/api_publish.py [--duration 3] [--rounds 2]``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpc import aio
from rawclients import ApiHammer
from system import cpu_layout, cpu_ns, free_port, pinned_command, wait_listening

from rotary.server.api._pb import api_pb2
from rotary.server.api._pb.api_pb2_grpc import CentrifugoApiStub

BENCH = Path(__file__).resolve().parent
GO_DEPS = BENCH.parent / "tests" / "tools" / "go-deps"
API_KEY = "bench-api-key"
CHANNEL = "bench-api"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def write_config(workdir: Path, name: str, http_port: int, grpc_port: int) -> Path:
    config = {
        "http_api": {"key": API_KEY},
        "http_server": {"port": http_port},
        "grpc_api": {"enabled": True, "address": "127.0.0.1", "port": grpc_port, "key": API_KEY},
        "log": {"level": "error"},
    }
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def centrifugo_binary() -> str:
    done = subprocess.run([str(GO_DEPS)], capture_output=True, text=True, check=False)
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if done.returncode != 0 or "centrifugo" not in found:
        raise SystemExit(f"{GO_DEPS} could not provide Centrifugo: {done.stderr.strip()[-2000:]}")
    return found["centrifugo"]


def start(name: str, cpus: set[int] | None, workdir: Path) -> Server:
    http_port, grpc_port = free_port(), free_port()
    config = str(write_config(workdir, name, http_port, grpc_port))
    if name == "rotary":
        command = [str(Path(sys.executable).parent / "rotary"), "-c", config]
    else:
        command = [centrifugo_binary(), "-c", config]
    process = subprocess.Popen(pinned_command(command, cpus), cwd=workdir)
    wait_listening(http_port, process)
    wait_listening(grpc_port, process)
    return Server(name, process, http_port, grpc_port)


async def http_phase(server: Server, connections: int, duration: float) -> tuple[int, int, float]:
    """(calls answered, calls failed, wall seconds) of the HTTP phase."""
    hammer = ApiHammer(f"http://127.0.0.1:{server.http_port}/api", API_KEY, CHANNEL, connections)
    wall = await hammer.run(duration)
    return hammer.stats.responses, hammer.stats.errors, wall


async def grpc_phase(server: Server, callers: int, channels: int, duration: float) -> tuple[int, int, float]:
    """(calls answered, calls failed, wall seconds) of the GRPC phase."""
    request = api_pb2.PublishRequest(channel=CHANNEL, data=b'{"t":1}')
    metadata = (("authorization", f"apikey {API_KEY}"),)
    opened = [aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") for _ in range(channels)]
    for channel in opened:
        await channel.channel_ready()
    stubs = [CentrifugoApiStub(channel) for channel in opened]
    counts = [0, 0]
    start = time.monotonic()
    deadline = start + duration

    async def caller(stub: CentrifugoApiStub) -> None:
        while time.monotonic() < deadline:
            response = await stub.Publish(request, metadata=metadata)
            counts[response.HasField("error")] += 1

    await asyncio.gather(*(caller(stubs[i % channels]) for i in range(callers)))
    wall = time.monotonic() - start
    for channel in opened:
        await channel.close()
    return counts[0], counts[1], wall


@dataclass
class Row:
    server: str
    api: str
    per_second: float
    cpu_us: float


def measure(server: Server, api: str, phase: Coroutine[Any, Any, tuple[int, int, float]]) -> Row:
    """Runs one phase (in a fresh event loop) and reads the server's CPU time around it."""
    before = cpu_ns(server.process.pid)
    ok, failed, wall = asyncio.run(phase)
    spent = cpu_ns(server.process.pid) - before
    if failed or not ok:
        raise SystemExit(f"{server.name} {api}: {failed} failed calls of {ok + failed}")
    return Row(server.name, api, ok / wall, spent / ok / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--servers", nargs="+", choices=("rotary", "centrifugo"), default=["rotary", "centrifugo"]
    )
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16, help="HTTP clients, and GRPC calls in flight")
    parser.add_argument("--grpc-channels", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    generator, server_cpus = cpu_layout()
    if generator is not None:
        os.sched_setaffinity(0, generator)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name in args.servers:
                server = start(name, server_cpus, Path(tmp))
                try:
                    time.sleep(1.0)  # let it settle before the first call
                    http = http_phase(server, args.connections, args.duration)
                    rows.append(measure(server, "http", http))
                    grpc = grpc_phase(server, args.connections, args.grpc_channels, args.duration)
                    rows.append(measure(server, "grpc", grpc))
                finally:
                    server.stop()
    report(rows, args.servers)


def report(rows: list[Row], servers: list[str]) -> None:
    def median(server: str, api: str, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in rows if (r.server, r.api) == (server, api))

    def ratio(a: tuple[str, str], b: tuple[str, str]) -> str:
        rate = median(*a, "per_second") / median(*b, "per_second")
        cpu = median(*a, "cpu_us") / median(*b, "cpu_us")
        return f"calls/s {rate:.2f}x, CPU per call {cpu:.2f}x"

    print("| api | " + " | ".join(f"{s} calls/s | {s} CPU µs/call" for s in servers) + " |")
    print("|---" * (1 + 2 * len(servers)) + "|")
    for api in ("http", "grpc"):
        cells = [f"{median(s, api, 'per_second'):.0f} | {median(s, api, 'cpu_us'):.0f}" for s in servers]
        print(f"| {api} | {' | '.join(cells)} |")
    for server in servers:
        print(f"{server} grpc/http: {ratio((server, 'grpc'), (server, 'http'))}")
    if len(servers) == 2:
        first, second = servers
        for api in ("http", "grpc"):
            print(f"{api} {first}/{second}: {ratio((first, api), (second, api))}")


if __name__ == "__main__":
    main()
