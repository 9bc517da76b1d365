"""The port's accept queue is the kernel's whole limit (``net.core.somaxconn``), as Centrifugo's Go
listener asks for (``ss -ltn`` shows 65535 for centrifugo v6.9.1 on a host whose limit is 65535),
not asyncio's default of 100, which drops the SYNs of a reconnect storm: see ``listen_backlog``."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from helpers.env import free_port
from helpers.server import serving

from rotary.server import app
from rotary.server.config.schema import Config, HTTPServerConfig


async def test_the_port_queues_as_many_connections_as_the_kernel_allows() -> None:
    ss = shutil.which("ss")
    if ss is None or not Path(app.SOMAXCONN_PATH).exists():
        pytest.skip("needs iproute2's ss and Linux's /proc")
    config = Config(http_server=HTTPServerConfig(address="127.0.0.1", port=free_port()))
    async with serving(config):
        listening = subprocess.run(
            [ss, "-ltnH", f"sport = :{config.http_server.port}"], capture_output=True, text=True, check=True
        ).stdout.split()
    # State, Recv-Q, Send-Q: for a listening socket Send-Q is the accept queue's size.
    assert int(listening[2]) == int(Path(app.SOMAXCONN_PATH).read_text()) == app.listen_backlog()


def test_without_proc_the_backlog_is_the_platforms_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "SOMAXCONN_PATH", "/nonexistent/somaxconn")
    assert app.listen_backlog() == socket.SOMAXCONN
