"""`rotary --workers N`: N server processes sharing one listening port, supervised.

A Python process uses one core, so rotary scales on one machine the way Centrifugo scales across
machines: several nodes joined by a shared broker. Each worker is a full node listening with
SO_REUSEPORT; the kernel spreads new connections over them. A worker that dies is started again;
SIGTERM or SIGINT stops all of them gracefully; SIGHUP is passed on to each, which reloads its
config. With the memory engine the workers would be separate servers that cannot see each other's
clients, so rotary refuses to start.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import FrameType

from rotary.server.config.env import WORKER_METRICS_VARIABLE, WORKER_VARIABLE
from rotary.server.config.schema import Config

log = logging.getLogger("rotary.server.workers")

WORKER_ENV = WORKER_VARIABLE
RESTART_DELAY = 1.0


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
    return os.environ.get(WORKER_ENV) == "1"


class Supervisor:
    def __init__(self, count: int, argv: Sequence[str]) -> None:
        self._count = count
        self._argv = list(argv)
        self._workers: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = False
        self._metrics_dir = ""
        """The run's private directory where the workers answer each other's metrics scrapes."""

    def _start(self, slot: int) -> None:
        env = {**os.environ, WORKER_ENV: "1", WORKER_METRICS_VARIABLE: self._metrics_dir}
        self._workers[slot] = subprocess.Popen([sys.executable, "-m", "rotary", *self._argv], env=env)
        log.info("worker %d started (pid %d)", slot, self._workers[slot].pid)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        for proc in self._workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        """Each worker reloads its config itself, as a single server does on SIGHUP."""
        for proc in self._workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGHUP)

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
        while not self._stopping:
            time.sleep(0.2)
            for slot, proc in list(self._workers.items()):
                if proc.poll() is not None and not self._stopping:
                    log.error("worker %d exited with %s; starting it again", slot, proc.returncode)
                    time.sleep(RESTART_DELAY)
                    self._start(slot)
        codes = [proc.wait() for proc in self._workers.values()]
        return 0 if all(code == 0 for code in codes) else 1
