"""Without the ``grpc`` and ``http3`` extras (grpcio, aioquic) rotary still checks and serves a
default config, and refuses a config that needs them by its key, naming the extra. The modules are
hidden from a subprocess (``sys.modules[name] = None`` makes their import fail and find_spec say
absent); the packaging tests install the wheel without extras for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.env import free_port

PROBE_TIMEOUT = 300
"""Seconds the probe may take on a loaded machine (it starts one server)."""
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
    # Serves the default config (with the health endpoint) until /health answers.
    import aiohttp
    from rotary.server.app import serve

    config = load_config("default.json", {{}}, {{}}).config
    stop = asyncio.Event()
    task = asyncio.create_task(serve(build_server(config), stop))
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get("http://127.0.0.1:{port}/health") as response:
                    print("health", response.status)
                    break
            except aiohttp.ClientConnectionError:
                if task.done():
                    await task  # it failed to start: its error ends the probe
                await asyncio.sleep(0.05)
    stop.set()
    await task


asyncio.run(build())
print("default", main(["checkconfig", "-c", "default.json"]))
print("grpc_api", main(["checkconfig", "-c", "grpc.json"]))
print("webtransport", main(["checkconfig", "-c", "webtransport.json"]))
"""


def test_server_without_grpc_and_http3_extras(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "default.json").write_text(
        f'{{"http_server": {{"address": "127.0.0.1", "port": {port}}}, "health": {{"enabled": true}}}}'
    )
    (tmp_path / "grpc.json").write_text('{"grpc_api": {"enabled": true}}')
    (tmp_path / "webtransport.json").write_text(
        '{"webtransport": {"enabled": true}, "http_server": {"http3": {"enabled": true}}}'
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(hidden=HIDDEN, port=port)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=PROBE_TIMEOUT,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert "health 200" in output and "default 0" in output
    assert "grpc_api.enabled: needs the optional dependencies of rotary[grpc]" in output
    assert "http_server.http3.enabled: needs the optional dependencies of rotary[http3]" in output
    assert "grpc_api 1" in output and "webtransport 1" in output
