"""Host preparation and process accounting for the benchmark: limits, CPU pinning, CPU time, ports.

CPU time is read from ``/proc/<pid>/task/*/schedstat`` (nanoseconds on CPU per thread) so that short
scenarios are measured precisely; ``/proc/<pid>/stat`` only counts in clock ticks (10 ms here).
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path

BACKLOG_SYSCTLS = {"net.core.netdev_max_backlog": 65536, "net.core.somaxconn": 65535}


def raise_nofile(wanted: int) -> int:
    """Raises the open-files limit towards ``wanted`` (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted if hard == resource.RLIM_INFINITY else min(wanted, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def raise_backlogs() -> list[str]:
    """Raises kernel queue lengths that 5000 loopback sockets overflow; returns warnings for failures."""
    warnings = []
    for key, value in BACKLOG_SYSCTLS.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        try:
            if int(path.read_text()) < value:
                path.write_text(str(value))
        except (OSError, ValueError) as exc:
            warnings.append(f"could not raise {key} to {value} ({exc}); drops may distort results")
    return warnings


def cpu_layout() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for (generator, server): one each when two are available, else no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def pinned_command(command: list[str], cpus: set[int] | None) -> list[str]:
    """Prefixes ``taskset`` so the server starts on its own CPU (exec keeps the pid)."""
    if cpus is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]


def cpu_ns(pid: int) -> int:
    """Nanoseconds all live threads of ``pid`` have spent on a CPU."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError):
            continue
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (all its threads share it), from ``VmRSS`` in /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def own_cpu_ns() -> int:
    return time.process_time_ns()


def host_busy_ns() -> int:
    """Nanoseconds all CPUs of the host spent busy (everything but idle and iowait), from /proc/stat.

    Subtracting the server's and the generator's share shows how much other load disturbed a run.
    """
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Blocks until something accepts on ``port``; fails early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")
