"""Debian's ``pebble``, the test ACME CA, on free ports with a config and certificate made per test.

Pebble validates HTTP-01 challenges for real: it connects to the challenged host on
``http_port`` (the port the test gives rotary's challenge server), resolving names with the
system resolver, so ``localhost`` reaches 127.0.0.1. Its API is HTTPS with a certificate from the
test's CA; clients trust it through ``ca_file`` (``REQUESTS_CA_BUNDLE`` for the acme library).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from helpers.certs import TestCA
from helpers.env import START_LIMIT, free_port, require_binary

START_TIMEOUT = START_LIMIT


@dataclass(frozen=True)
class Pebble:
    directory_url: str
    management_url: str
    ca_file: Path
    """The CA of pebble's own HTTPS API."""
    http_port: int
    """Where pebble sends its HTTP-01 validation requests."""
    log_path: Path

    def roots_pem(self) -> bytes:
        """The root that signs the certificates pebble issues (made anew at each pebble start)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(f"{self.management_url}/roots/0", context=context) as response:
            data: bytes = response.read()
        return data


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_pebble(directory: Path) -> Iterator[Pebble]:
    """A pebble process until exit; skips the test (fails under CI) when pebble is not installed."""
    binary = require_binary("pebble")
    directory.mkdir(parents=True, exist_ok=True)
    ca = TestCA("pebble API CA")
    cert, key = ca.issue("pebble").write(directory, "pebble")
    api_port, management_port, http_port, tls_port = (free_port() for _ in range(4))
    config = directory / "pebble-config.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{api_port}",
                    "managementListenAddress": f"127.0.0.1:{management_port}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": http_port,
                    "tlsPort": tls_port,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    environment = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    log_path = directory / "pebble.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (_listening(api_port) and _listening(management_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pebble did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield Pebble(
            f"https://127.0.0.1:{api_port}/dir",
            f"https://127.0.0.1:{management_port}",
            ca.write(directory, "pebble-ca"),
            http_port,
            log_path,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
