"""A real nats-server process per test, on a port the OS picks, restartable on that same port.

The server is asked for a random port (``-p -1``) so no two tests race for one; readiness and the
chosen port are read from the server's own log, which is how nats.py's test suite waits for it too.
Restarting on the same port is what lets a test watch a client reconnect and resubscribe.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from helpers.env import START_LIMIT, require_binary

_READY = "Server is ready"
_LISTENING = re.compile(r"Listening for client connections on [^\s:]+:(\d+)")
_START_TIMEOUT = START_LIMIT


class NatsServer:
    """One nats-server bound to 127.0.0.1; ``port`` stays the same across ``stop`` and ``start``."""

    def __init__(self, binary: str, log_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self._binary = binary
        self._extra_args = extra_args
        self._log_dir = log_dir
        self._starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self.port = -1

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        """Starts the server (on its first port again after a stop) and waits until it accepts clients."""
        if self._process is not None:
            raise RuntimeError("nats-server is already running")
        self._starts += 1
        log = self._log_dir / f"nats-server-{self._starts}.log"
        command = [self._binary, "-a", "127.0.0.1", "-p", str(self.port), "-l", str(log), *self._extra_args]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.port = self._wait_until_ready(log)
        except BaseException:
            self.kill()
            raise

    def pause(self) -> None:
        """Stops the process (SIGSTOP): connections stay open and nothing is answered, as a hung
        server or a frozen VM would behave."""
        assert self._process is not None, "nats-server is not running"
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Lets a paused server run again (SIGCONT)."""
        assert self._process is not None, "nats-server is not running"
        os.kill(self._process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Shuts the server down gracefully (SIGTERM): clients see their connection close."""
        self._end(subprocess.Popen.terminate)

    def kill(self) -> None:
        """Kills the server (SIGKILL), as a crash would."""
        self._end(subprocess.Popen.kill)

    def _end(self, send_signal: Callable[[subprocess.Popen[bytes]], None]) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            send_signal(process)
            os.kill(process.pid, signal.SIGCONT)  # a paused server handles SIGTERM only once resumed
        process.wait(timeout=_START_TIMEOUT)

    def _wait_until_ready(self, log: Path) -> int:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            text = log.read_text() if log.exists() else ""
            listening = _LISTENING.search(text)
            if _READY in text and listening:
                return int(listening.group(1))
            if self._process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self._process.returncode}:\n{text}")
            time.sleep(0.005)
        raise TimeoutError(f"nats-server not ready within {_START_TIMEOUT}s:\n{log.read_text()}")


@contextlib.contextmanager
def nats_server(*extra_args: str) -> Iterator[NatsServer]:
    """A started nats-server (``extra_args`` added to its command line, ``-c <config>`` for instance),
    stopped afterwards; skips the test (fails under CI) without the binary."""
    binary = require_binary("nats-server")
    with tempfile.TemporaryDirectory(prefix="rotary-nats-") as log_dir:
        server = NatsServer(binary, Path(log_dir), extra_args)
        server.start()
        try:
            yield server
        finally:
            server.kill()
