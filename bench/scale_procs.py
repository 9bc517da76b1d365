"""Processes of the scale benchmark: a private redis-server, rotary (one node or a supervisor with
workers), and the CPU accounting of a measured window per role (server, Redis, generator, others).

A worker is a child of the ``rotary --workers N`` supervisor
(https://centrifugal.dev/docs/server/engines#redis-engine explains why several nodes need Redis);
the server's CPU is the sum over the supervisor and all its children, per thread, from schedstat.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from system import cpu_ns, free_port, host_busy_ns, own_cpu_ns, pinned_command, wait_listening

BENCH = Path(__file__).resolve().parent


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, from each process's parent id in /proc/<pid>/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def pin(pid: int, cpus: set[int]) -> None:
    """Pins every thread of ``pid``; threads started later inherit from the one that starts them."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return count


def process_cpu_ns(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += cpu_ns(pid)
        except FileNotFoundError:
            continue
    return total


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int

    @classmethod
    @contextmanager
    def start(cls, cpus: set[int] | None) -> Iterator[RedisServer]:
        port = free_port()
        command = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
        ]
        process = subprocess.Popen(pinned_command(command, cpus), stdout=subprocess.DEVNULL)
        try:
            wait_listening(port, process)
            yield cls(process, port)
        finally:
            process.terminate()
            process.wait(10)


@dataclass
class RotaryServer:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    workers: int
    layout: str
    cpus: list[int]
    """The generator's and the server's CPUs of the split layout; empty when nothing is pinned."""
    worker_pids: list[int] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        name: str,
        config: Path,
        workers: int,
        layout: str,
        cpus: tuple[set[int] | None, set[int] | None],
        workdir: Path,
    ) -> RotaryServer:
        """One node is pinned to the server CPU (split and pinned layouts); workers start unpinned."""
        port = free_port()
        command = [
            str(Path(sys.executable).parent / "rotary"),
            "-c",
            str(config),
            "--http_server.port",
            str(port),
        ]
        if workers > 1:
            # The generator has pinned itself by now and children inherit that: give the workers all CPUs.
            everywhere = set(range(os.cpu_count() or 1))
            command = pinned_command([*command, "--workers", str(workers)], everywhere)
        else:
            command = pinned_command(command, cpus[1])
        process = subprocess.Popen(command, cwd=workdir)
        wait_listening(port, process)
        return cls(name, process, port, workers, layout, sorted((cpus[0] or set()) | (cpus[1] or set())))

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def pin_workers(self) -> None:
        """Records the worker pids; in the pinned layout, puts worker i on its own CPU."""
        if self.workers == 1:
            self.worker_pids = [self.process.pid]
            return
        self.worker_pids = children(self.process.pid)
        if self.layout == "pinned" and self.cpus:
            for index, pid in enumerate(self.worker_pids):
                pin(pid, {self.cpus[-1 - index % len(self.cpus)]})

    def sockets_per_worker(self) -> list[int]:
        """Open sockets of each worker: how SO_REUSEPORT spread the connections (plus a few own)."""
        return [open_sockets(pid) for pid in self.worker_pids]

    def pids(self) -> list[int]:
        return sorted({self.process.pid, *self.worker_pids})

    def start_sampler(self, label: str) -> list[subprocess.Popen[bytes]]:
        """With BENCH_PYSPY=<py-spy binary>, samples every worker into bench/results/pyspy-scale-*.txt."""
        binary = os.environ.get("BENCH_PYSPY")
        if not binary:
            return []
        out = BENCH / "results"
        out.mkdir(parents=True, exist_ok=True)
        return [
            subprocess.Popen(
                [
                    binary,
                    "record",
                    "-p",
                    str(pid),
                    "-r",
                    "200",
                    "--native",
                    "--format",
                    "raw",
                    "-o",
                    str(out / f"pyspy-scale-{self.name}-{label}-{index}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for index, pid in enumerate(self.worker_pids)
        ]

    @staticmethod
    def stop_sampler(samplers: list[subprocess.Popen[bytes]]) -> None:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)
        for sampler in samplers:
            sampler.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Usage:
    """CPU time per role between construction and ``finish``."""

    def __init__(self, server: RotaryServer, redis: RedisServer) -> None:
        self._server, self._redis = server, redis
        self._start = self._snapshot()

    def _snapshot(self) -> tuple[int, int, int, int, int]:
        return (
            time.monotonic_ns(),
            process_cpu_ns(self._server.pids()),
            process_cpu_ns([self._redis.process.pid]),
            own_cpu_ns(),
            host_busy_ns(),
        )

    def finish(self) -> dict[str, Any]:
        end = self._snapshot()
        wall, server, redis, own, host = (b - a for a, b in zip(self._start, end, strict=True))
        other = max(0, host - server - redis - own)
        return {
            "wall_s": wall / 1e9,
            "server_cpu_s": server / 1e9,
            "redis_cpu_s": redis / 1e9,
            "system_cpu_s": (server + redis) / 1e9,
            "server_cores": server / wall,
            "redis_cores": redis / wall,
            "generator_cores": own / wall,
            "other_cores": other / wall,
            "loadavg": os.getloadavg()[0],
        }
