"""Without the ``grpc`` and ``http3`` extras (grpcio, aioquic) rotary still checks and builds a
default server, and refuses a config that needs them by its key, naming the extra. The modules are
hidden from a subprocess (``sys.modules[name] = None`` makes their import fail and find_spec say
absent); the packaging tests install the wheel without extras for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HIDDEN = ("grpc", "grpc_status", "grpc_reflection", "aioquic")

PROBE = """
import sys
for name in {hidden!r}:
    sys.modules[name] = None
from rotary.server.cli import main
import asyncio
from rotary.server.config.load import load_config
from rotary.server.app import build_server


async def build():
    server = build_server(load_config("default.json", {{}}, {{}}).config)
    await server.verifier.close()
    print("built", type(server).__name__)


asyncio.run(build())
print("default", main(["checkconfig", "-c", "default.json"]))
print("grpc_api", main(["checkconfig", "-c", "grpc.json"]))
print("webtransport", main(["checkconfig", "-c", "webtransport.json"]))
"""


def test_server_without_grpc_and_http3_extras(tmp_path: Path) -> None:
    (tmp_path / "default.json").write_text("{}")
    (tmp_path / "grpc.json").write_text('{"grpc_api": {"enabled": true}}')
    (tmp_path / "webtransport.json").write_text(
        '{"webtransport": {"enabled": true}, "http_server": {"http3": {"enabled": true}}}'
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(hidden=HIDDEN)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert "built Server" in output and "default 0" in output
    assert "grpc_api.enabled: needs the optional dependencies of rotary[grpc]" in output
    assert "http_server.http3.enabled: needs the optional dependencies of rotary[http3]" in output
    assert "grpc_api 1" in output and "webtransport 1" in output
