"""Runs centrifuge-go's own ``go test`` against rotary, from inside a private network namespace.

Like ``suite_runner.py`` (whose namespace, environment and server steps it reuses): the SDK's
docker-compose.yml starts Centrifugo at the fixed address localhost:8000 with a ``command`` (here
``centrifugo --client.insecure``) and an ``environment``; this script starts rotary with the same
flags and variables, waits until it answers, runs ``go test`` with the given arguments in the SDK's
source tree, writing its output to a file, stops rotary and exits with go test's code.

The namespace has no route to the module proxy, so the caller downloads the modules and warms the
build cache first; ``GOPROXY=off`` turns anything still missing into an immediate, named error.

Usage: go_suite_runner.py --suite DIR --rotary BIN --output FILE --rotary-log FILE -- GO_TEST_ARGS...
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from suite_runner import bring_loopback_up, server_environment, stop, wait_until_serving

SUITE_TIMEOUT = 420.0
"""Outer bound; the caller passes go test its own, shorter ``-timeout`` so that Go names the hung test."""


def server_arguments(compose_file: Path) -> list[str]:
    """The compose service's ``command`` after the ``centrifugo`` executable: rotary takes the same flags."""
    compose: dict[str, Any] = yaml.safe_load(compose_file.read_text())
    service = next(iter(compose["services"].values()))
    command = service.get("command") or []
    words = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    if words and words[0] == "centrifugo":
        words = words[1:]
    return words


def run_go_test(suite: Path, go_test_args: list[str], output: Path) -> int:
    environment = os.environ | {"GOPROXY": "off", "GOTOOLCHAIN": "local"}
    with output.open("wb") as out:
        try:
            done = subprocess.run(
                ["go", "test", *go_test_args],
                cwd=suite,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=SUITE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"go test did not finish within {SUITE_TIMEOUT:.0f}s")
            return 1
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, required=True, help="the SDK's module source tree")
    parser.add_argument("--rotary", required=True, help="the rotary executable")
    parser.add_argument("--output", type=Path, required=True, help="where go test's output goes")
    parser.add_argument("--rotary-log", type=Path, required=True, help="where rotary's output goes")
    parser.add_argument("go_test_args", nargs="+", help="arguments of `go test`")
    args = parser.parse_args()

    bring_loopback_up()
    compose_file = args.suite / "docker-compose.yml"
    environment = server_environment(compose_file)
    command = [args.rotary, *server_arguments(compose_file)]
    # An empty working directory: no config.json or .env of the caller's is picked up.
    with tempfile.TemporaryDirectory() as workdir, args.rotary_log.open("wb") as log:
        server = subprocess.Popen(command, cwd=workdir, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(server)
            return run_go_test(args.suite, args.go_test_args, args.output)
        finally:
            stop(server)


if __name__ == "__main__":
    sys.exit(main())
