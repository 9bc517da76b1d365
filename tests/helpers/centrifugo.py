"""Centrifugo v6.9.1 itself, the reference rotary is compared with.

``centrifugo_binary()`` runs ``tests/tools/go-deps`` once per session (it installs Centrifugo by
module name into the git-ignored ``.cache/go``, or finds it there) and returns the binary's path.
When Go or the module cannot be had the test is skipped naming go-deps' own error, and fails
instead under CI=true, like any other missing binary (helpers.env.require_binary).

``with centrifugo_process(directory, config) as server:`` runs ``centrifugo -c <config.json>`` on a
free port of 127.0.0.1 and stops it with SIGTERM on exit. Centrifugo opens only the HTTP server's
port unless a config enables another listener, and those (gRPC API, uni gRPC, a separate internal
port) default to fixed ports: a config enabling one without its own port is refused here. The
process sees no CENTRIFUGO_* variable of the test run, so that the config file alone decides, and
``usage_stats.disabled`` is forced on so that the reference never reports outside the machine.
See https://centrifugal.dev/docs/server/configuration.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.cluster import RotaryNode
from helpers.env import IN_CI, START_LIMIT, free_port

REPO = Path(__file__).resolve().parents[2]
GO_DEPS = REPO / "tests" / "tools" / "go-deps"
START_TIMEOUT = START_LIMIT


@functools.cache
def _install() -> tuple[str | None, str]:
    """(path, "") once go-deps found or built Centrifugo, else (None, why not)."""
    try:
        done = subprocess.run(
            [str(GO_DEPS)], capture_output=True, text=True, timeout=1800, check=False, cwd=REPO
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"tests/tools/go-deps could not run: {exc}"
    if done.returncode != 0:
        return None, f"tests/tools/go-deps failed: {done.stderr.strip() or done.stdout.strip()}"
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        if name == "centrifugo" and os.access(value, os.X_OK):
            return value, ""
    return None, f"tests/tools/go-deps printed no centrifugo binary: {done.stdout.strip()}"


def centrifugo_binary() -> str:
    """The Centrifugo binary; skips the test (fails under CI) when it cannot be installed."""
    path, reason = _install()
    if path is None:
        if IN_CI:
            pytest.fail(reason + " (CI must install it)")
        pytest.skip(reason)
    return path


@dataclass
class CentrifugoProcess:
    """One running Centrifugo process on 127.0.0.1."""

    port: int
    config: dict[str, Any]
    config_path: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_ready(self) -> None:
        """Returns once the HTTP port accepts connections; raises with the log if it exits or stalls."""
        wait_listening(self.port, self.process, self.stop, self.log)


def wait_listening(
    port: int, process: subprocess.Popen[bytes], stop: Callable[[], None], log: Callable[[], str]
) -> None:
    """Returns once Centrifugo's ``process`` accepts connections on ``port``; raises with its
    ``log`` if it exits, or after ``stop`` if it is not listening within START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"centrifugo exited with {process.returncode}:\n{log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"centrifugo did not start within {START_TIMEOUT}s:\n{log()}")
        time.sleep(0.05)


def centrifugo_command(binary: str, config_path: Path, port: int, *args: str) -> list[str]:
    """Centrifugo with ``config_path``, on ``port`` of 127.0.0.1."""
    command = [binary, "-c", str(config_path), "--http_server.address", "127.0.0.1"]
    return [*command, "--http_server.port", str(port), *args]


def centrifugo_env() -> dict[str, str]:
    """This process's environment without CENTRIFUGO_ variables, which Centrifugo would read as config."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CENTRIFUGO_")}


FIXED_PORT_LISTENERS = {"grpc_api": 10000, "uni_grpc": 11000}
"""Config sections that open a listener of their own, and the port it defaults to."""


def _check_ports(config: dict[str, Any]) -> None:
    for section, default in FIXED_PORT_LISTENERS.items():
        settings = config.get(section) or {}
        if settings.get("enabled") and not settings.get("port"):
            raise ValueError(f"{section} is enabled without a port: it would listen on {default}")
    if (config.get("http_server") or {}).get("internal_port"):
        raise ValueError("http_server.internal_port opens a second port; leave it to the free one")


def reference_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with usage statistics off, the only key every config given to Centrifugo needs."""
    result = copy.deepcopy(config)
    result.setdefault("usage_stats", {})["disabled"] = True
    return result


@contextlib.contextmanager
def centrifugo_process(
    directory: Path, config: dict[str, Any], *args: str, binary: str | None = None
) -> Iterator[CentrifugoProcess]:
    """Runs ``centrifugo -c <directory>/config.json`` on a free port of 127.0.0.1 until exit."""
    binary = binary or centrifugo_binary()
    _check_ports(config)
    directory.mkdir(parents=True, exist_ok=True)
    config = reference_config(config)
    config_path = directory / "config.json"
    config_path.write_text(json.dumps(config))
    log_path = directory / "centrifugo.log"
    port = free_port()
    command = centrifugo_command(binary, config_path, port, *args)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, cwd=directory, env=centrifugo_env()
        )
    server = CentrifugoProcess(port, config, config_path, process, log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@dataclass
class CentrifugoNode(RotaryNode):
    """A RotaryNode that runs Centrifugo instead: the same config file, killed and started again on
    the same port, for tests that put the reference through what rotary goes through (the
    reliability kit's storm with ``RELIABILITY_STORM_SERVER=centrifugo``)."""

    @property
    def log_path(self) -> Path:
        return self.directory / "centrifugo.log"

    def start(self, ready_lines: int = 1) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config_path = self.directory / "config.json"
        config_path.write_text(json.dumps(reference_config(self.config)))
        self._spawn(centrifugo_command(centrifugo_binary(), config_path, self.port), centrifugo_env())
        assert self.process is not None
        wait_listening(self.port, self.process, self.kill, self.log)
