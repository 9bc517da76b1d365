"""Instructions rotary's command layer runs per connect + subscribe, in-process, under callgrind.

connects.py counts the whole server (the upgrade, aiohttp, the socket writes) per connect; this
counts only what follows the upgrade: ``Client.handle_frame`` with a connect frame carrying an
HS256 JWT, then a subscribe frame, through the hooks ``build_server`` makes from a config like the
benchmark's (JSON protocol), into a transport that keeps the frames. No sockets, no event loop
waits and no timers fire within the count, so it is exact and repeatable whatever else the host
runs; use it to compare a change (``--alt`` runs another checkout's ``src`` in the same run).

Run from the repository root: ``.venv/bin/python bench/commands_ir.py --alt /work/main/src``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jwt

SECRET = "commands-ir-secret-of-thirty-two-bytes"
WARMUP = 50
"""Clients served before counting: the first ones import and cache what later ones reuse."""

HEADERS = {
    "host": "127.0.0.1:8000",
    "upgrade": "websocket",
    "connection": "Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-protocol": "centrifuge-json",
}


def count(src: str | None, clients: int) -> float:
    """Runs this file's ``--serve`` half under callgrind and returns instructions per client."""
    with tempfile.TemporaryDirectory(prefix="rotary-commands-ir-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ)
        if src:
            env["PYTHONPATH"] = src
        command = [
            "valgrind",
            "-q",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--serve",
            "--clients",
            str(clients),
        ]
        subprocess.run(command, env=env, check=True)
        totals = [int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:")]
    return max(totals) / clients


class KeptFrames:
    """The node's Transport for a client whose frames are only kept (and counted)."""

    name = "websocket"
    unidirectional = False
    framing = "ws-text"

    def __init__(self) -> None:
        from rotary.protocol.codec import ProtocolType

        self.protocol = ProtocolType.JSON
        self.frames: list[bytes] = []

    def frame(self, payload: bytes) -> bytes:
        return payload

    def write(self, payload: bytes) -> None:
        self.frames.append(payload)

    def write_prepared(self, frame: bytes) -> int:
        self.frames.append(frame)
        return 0

    def close(self, disconnect: object) -> int:
        raise AssertionError(f"closed with {disconnect}")

    def abort(self) -> None:
        raise AssertionError("aborted")


async def serve(clients: int) -> None:
    """Connects and subscribes ``WARMUP`` clients, then ``clients`` more with callgrind counting."""
    from rotary.node.client import Client
    from rotary.server.app import build_server
    from rotary.server.config.load import load_config

    config = {
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"]},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
        "log": {"level": "error"},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        file.write(json.dumps(config))
        file.flush()
        node = build_server(load_config(file.name, {}).config).node
    expires = int(time.time()) + 3600
    frames = []
    transports = []
    for i in range(WARMUP + clients):
        token = jwt.encode({"sub": f"user-{i}", "exp": expires}, SECRET, algorithm="HS256")
        connect = json.dumps({"id": 1, "connect": {"token": token, "name": "bench"}}).encode()
        subscribe = json.dumps({"id": 2, "subscribe": {"channel": f"news-{i % 100}"}}).encode()
        transports.append(KeptFrames())
        frames.append((Client(node, transports[-1], HEADERS, "127.0.0.1"), connect, subscribe))

    async def run(batch: list[tuple[Client, bytes, bytes]]) -> None:
        for client, connect, subscribe in batch:
            await client.handle_frame(connect)
            await client.handle_frame(subscribe)

    await run(frames[:WARMUP])
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    await run(frames[WARMUP:])
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)
    replied = [len(transport.frames) for transport in transports]
    assert replied == [2] * len(frames), "every client gets its connect and subscribe replies"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--alt", help="another checkout's src directory, counted after this one")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvloop

        uvloop.run(serve(args.clients))
        return 0
    print(f"this checkout: {count(None, args.clients) / 1e3:.1f}k instructions per connect + subscribe")
    if args.alt:
        print(f"{args.alt}: {count(args.alt, args.clients) / 1e3:.1f}k instructions per connect + subscribe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
