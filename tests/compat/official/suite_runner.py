"""Runs an SDK's own test suite against rotary, from inside a private network namespace.

SDK suites expect the server of their docker-compose.yml at the fixed address localhost:8000. In a
fresh namespace (``unshare --net``) that port is free by construction, so this script can bind it:
it brings the loopback up, starts rotary configured by exactly the compose file's environment
variables (https://centrifugal.dev/docs/server/configuration#os-environment-variables), waits
until it answers, runs the suite's unittest command, stops rotary and exits with the suite's code.

Usage: suite_runner.py --suite DIR --rotary BIN --output FILE --rotary-log FILE -- UNITTEST_ARGS...
"""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

SERVER_URL = "http://localhost:8000/connection/websocket"
"""What the suites poll before they start: any HTTP answer there means the server is up."""

STARTUP_TIMEOUT = 60.0
"""An upper bound as tests/helpers/env.py's START_LIMIT (this script runs alone in its namespace and
imports none of the helpers): starts took over 20 s while other work kept both cores busy."""
SHUTDOWN_TIMEOUT = 15.0
SUITE_TIMEOUT = 300.0
"""The suites await events without deadlines, so a server that misses one hangs them."""
CONFIG_PREFIXES = ("CENTRIFUGO_", "ROTARY_")

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
IFREQ = struct.Struct("16sH22x")
"""Linux ``struct ifreq`` (40 bytes) holding an interface name and its flags."""


def bring_loopback_up() -> None:
    """What ``ip link set lo up`` does, without needing iproute2: a new namespace starts with lo down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        current = fcntl.ioctl(sock, SIOCGIFFLAGS, IFREQ.pack(b"lo", 0))
        _, flags = IFREQ.unpack(current)
        fcntl.ioctl(sock, SIOCSIFFLAGS, IFREQ.pack(b"lo", flags | IFF_UP))


def compose_environment(compose_file: Path) -> dict[str, str]:
    """The ``environment`` of the compose file's first service, in either of compose's two forms."""
    compose: dict[str, Any] = yaml.safe_load(compose_file.read_text())
    service = next(iter(compose["services"].values()))
    entries = service.get("environment") or {}
    if isinstance(entries, dict):
        return {str(k): "" if v is None else str(v) for k, v in entries.items()}
    return dict(str(entry).split("=", 1) for entry in entries)


def server_environment(compose_file: Path) -> dict[str, str]:
    """This process's environment without config variables of its own, plus the compose ones."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES)}
    return inherited | compose_environment(compose_file)


def answers() -> bool:
    try:
        urllib.request.urlopen(SERVER_URL, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def wait_until_serving(server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not answers():
        if server.poll() is not None:
            raise SystemExit(f"rotary exited with code {server.returncode} before serving")
        if time.monotonic() > deadline:
            raise SystemExit(f"rotary did not answer at {SERVER_URL} within {STARTUP_TIMEOUT:.0f}s")
        time.sleep(0.1)


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        print(f"rotary had exited on its own, with code {server.returncode}")
        return
    server.terminate()
    try:
        server.wait(SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        print(f"rotary did not stop within {SHUTDOWN_TIMEOUT:.0f}s of SIGTERM and was killed")


def run_suite(suite: Path, unittest_args: list[str], output: Path) -> int:
    with output.open("wb") as out:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "unittest", *unittest_args],
                cwd=suite,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=SUITE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"the suite did not finish within {SUITE_TIMEOUT:.0f}s; {last_started(output)}")
            return 1
    return done.returncode


def last_started(output: Path) -> str:
    """The test a hung suite was in, from the ``name (module.Class.name) ...`` lines of ``-v``."""
    started = [line for line in output.read_text(errors="replace").splitlines() if " ... " in line]
    return f"the last test it started: {started[-1].split(' ... ')[0]}" if started else "no test had started"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, required=True, help="the unpacked SDK source tree")
    parser.add_argument("--rotary", required=True, help="the rotary executable")
    parser.add_argument("--output", type=Path, required=True, help="where the suite's output goes")
    parser.add_argument("--rotary-log", type=Path, required=True, help="where rotary's output goes")
    parser.add_argument("unittest_args", nargs="+", help="arguments of `python -m unittest`")
    args = parser.parse_args()

    bring_loopback_up()
    environment = server_environment(args.suite / "docker-compose.yml")
    # An empty working directory: no config.json or .env of the caller's is picked up.
    with tempfile.TemporaryDirectory() as workdir, args.rotary_log.open("wb") as log:
        server = subprocess.Popen(
            [args.rotary], cwd=workdir, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_serving(server)
            return run_suite(args.suite, args.unittest_args, args.output)
        finally:
            stop(server)


if __name__ == "__main__":
    sys.exit(main())
