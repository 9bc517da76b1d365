"""`rotary --workers N`: N server processes sharing one listening port, supervised.

A Python process uses one core, so rotary scales on one machine the way Centrifugo scales across
machines: several nodes joined by a shared broker. Each worker is a full node listening with
SO_REUSEPORT; the kernel spreads new connections over them. SIGTERM or SIGINT stops all of them
gracefully; SIGHUP is passed on to each, which reloads its config. With the memory engine the workers
would be separate servers that cannot see each other's clients, so rotary refuses to start.

Centrifugo is one process (https://centrifugal.dev/docs/server/configuration): when it cannot start
(a port taken, an engine it cannot reach) it exits non-zero with the reason. The supervisor keeps that
contract: a worker that exits before it serves ends the whole server with the worker's exit code (the
worker has logged its reason to the same stderr). A worker that dies after it served is started again
after a growing back-off, and too many crashes in a short window end the server, so a crash loop is
seen by whatever runs rotary (systemd, Kubernetes) instead of hidden behind restarts.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from rotary.server.config.env import WORKER_METRICS_VARIABLE, WORKER_VARIABLE
from rotary.server.config.schema import Config

log = logging.getLogger("rotary.server.workers")

WORKER_ENV = WORKER_VARIABLE
"""Holds, in a worker's environment, the descriptor it writes one byte to once it serves."""
POLL_INTERVAL = 0.2
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0
CRASH_WINDOW = 60.0
CRASH_LIMIT = 5
"""This many crashes of workers within CRASH_WINDOW seconds end the server."""


def shared_broker(config: Config) -> bool:
    """Whether the configured engines let several nodes serve the same channels."""
    if config.broker.enabled:
        return config.broker.type in ("redis", "nats")
    return config.engine.type == "redis"


def refusal(config: Config) -> str | None:
    if config.http_server.tls_autocert.enabled:
        return (
            "--workers cannot be combined with http_server.tls_autocert: every worker would bind "
            "the ACME challenge address and order certificates of its own; run a single process"
        )
    if shared_broker(config):
        return None
    return (
        "--workers needs a broker the workers share: set engine.type to redis, or enable a redis or "
        "nats broker; with the memory engine every worker would be a separate server"
    )


def worker_count(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


def is_worker() -> bool:
    return WORKER_ENV in os.environ


def announce_serving() -> None:
    """Tells the supervisor that this worker listens: from now on its exit is a crash, not a
    failed start. Does nothing in a server that is not a worker."""
    descriptor = os.environ.pop(WORKER_ENV, "")
    if not descriptor.isdigit():
        return
    os.environ[WORKER_ENV] = "serving"
    try:
        os.write(int(descriptor), b"!")
        os.close(int(descriptor))
    except OSError as exc:  # the supervisor is gone; the worker goes on serving
        log.warning("cannot tell the supervisor that this worker serves: %s", exc)


@dataclass
class CrashPolicy:
    """Back-off between restarts of crashed workers, and the crash rate at which to give up."""

    first_delay: float = FIRST_RESTART_DELAY
    max_delay: float = MAX_RESTART_DELAY
    window: float = CRASH_WINDOW
    limit: int = CRASH_LIMIT
    _crashes: deque[float] = field(default_factory=deque)

    def record(self, now: float) -> float | None:
        """Records a crash at ``now``; returns the delay before the restart, or None to give up."""
        while self._crashes and self._crashes[0] <= now - self.window:
            self._crashes.popleft()
        self._crashes.append(now)
        if len(self._crashes) >= self.limit:
            return None
        delay: float = self.first_delay * 2.0 ** (len(self._crashes) - 1)
        return min(self.max_delay, delay)


@dataclass
class Worker:
    slot: int
    process: subprocess.Popen[bytes]
    ready: int
    """The read end of the pipe the worker writes to once it serves; -1 once read or closed."""
    restarted: bool
    """Started again after a crash: if it cannot start, that counts as one more crash."""
    serving: bool = False

    def check_serving(self) -> None:
        if self.ready < 0:
            return
        try:
            self.serving = os.read(self.ready, 1) == b"!"
        except BlockingIOError:
            return
        self.close()  # the byte, or end of file: the worker exited before it served

    def close(self) -> None:
        if self.ready >= 0:
            os.close(self.ready)
            self.ready = -1


class Supervisor:
    def __init__(
        self,
        count: int,
        argv: Sequence[str],
        policy: CrashPolicy | None = None,
        command: Sequence[str] = (sys.executable, "-m", "rotary"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count = count
        self._command = [*command, *argv]
        self._policy = policy or CrashPolicy()
        self._clock = clock
        self._workers: dict[int, Worker] = {}
        self._restarts: dict[int, float] = {}
        """Slot -> when its crashed worker starts again."""
        self._stopping = False
        self._metrics_dir = ""
        """The run's private directory where the workers answer each other's metrics scrapes."""

    def _start(self, slot: int, restarted: bool = False) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        env = {**os.environ, WORKER_ENV: str(write_end), WORKER_METRICS_VARIABLE: self._metrics_dir}
        try:
            process = subprocess.Popen(self._command, env=env, pass_fds=(write_end,))
        finally:
            os.close(write_end)
        self._workers[slot] = Worker(slot, process, read_end, restarted)
        log.info("worker %d started (pid %d)", slot, process.pid)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        self._signal_all(signal.SIGTERM)

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        """Each worker reloads its config itself, as a single server does on SIGHUP."""
        self._signal_all(signal.SIGHUP)

    def _signal_all(self, signum: int) -> None:
        for worker in self._workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signum)

    def run(self) -> int:
        self._metrics_dir = tempfile.mkdtemp(prefix="rotary-metrics-")
        try:
            return self._run()
        finally:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)
        for slot in range(self._count):
            self._start(slot)
        failure = self._supervise()
        if failure is not None:
            self._stopping = True
            self._signal_all(signal.SIGTERM)
        codes = {slot: worker.process.wait() for slot, worker in self._workers.items()}
        for worker in self._workers.values():
            worker.close()
        if failure is not None:
            return failure
        return 0 if all(code == 0 for slot, code in codes.items() if slot not in self._restarts) else 1

    def _supervise(self) -> int | None:
        """Watches the workers until a stop signal (None) or a failure (the server's exit code)."""
        while not self._stopping:
            self._wait_for_news()
            for slot, worker in list(self._workers.items()):
                if self._stopping:
                    break
                if slot in self._restarts:
                    if self._clock() >= self._restarts[slot]:
                        del self._restarts[slot]
                        self._start(slot, restarted=True)
                    continue
                code = worker.process.poll()
                worker.check_serving()  # after poll: a worker that served and then died has said so
                if code is None:
                    continue
                failure = self._exited(worker, code)
                if failure is not None:
                    return failure
        return None

    def _exited(self, worker: Worker, code: int) -> int | None:
        worker.close()
        if not worker.serving and not worker.restarted:
            log.error("worker %d could not start (exit code %d); stopping the server", worker.slot, code)
            return code if code > 0 else 1
        delay = self._policy.record(self._clock())
        if delay is None:
            log.error(
                "worker %d exited with %d: %d worker crashes within %gs; stopping the server",
                worker.slot,
                code,
                self._policy.limit,
                self._policy.window,
            )
            return 1
        log.error("worker %d exited with %d; starting it again in %gs", worker.slot, code, delay)
        self._restarts[worker.slot] = self._clock() + delay
        return None

    def _wait_for_news(self) -> None:
        """Sleeps until a worker announces it serves (or exits before it does), at most a poll."""
        pending = [worker.ready for worker in self._workers.values() if worker.ready >= 0]
        select.select(pending, [], [], POLL_INTERVAL)
