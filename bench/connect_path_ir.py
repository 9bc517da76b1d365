"""Instructions of rotary's whole connect path per connect + subscribe, in process, under callgrind.

connects.py counts the real server over loopback, with uvloop's accept and socket calls and a
client in another process; commands_ir.py counts only the command layer. This counts what lies
between: the standalone server's front door (server/front_door.py) reading a picows client's upgrade
request, the 101, rotary's WebSocket protocol reading a masked connect frame (with an HS256 or RS256
JWT, or none) and then a subscribe frame, the commands, and the frames written back, on sockets that
only keep what is written. Nothing else runs in the count (no accept, no syscalls, no pings), so it is
exact and repeatable whatever else the host runs: use it to compare a change (``--alt`` runs another
checkout's ``src`` in the same run), then confirm with ``connects.py --callgrind``.

Run from the repository root: ``.venv/bin/python bench/connect_path_ir.py --kind hs256 --alt <src>``.
``--profile FILE`` runs the same path under cProfile instead (call counts, where Python time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt

SECRET = "connect-path-ir-secret-of-32-bytes"
WARMUP = 50
"""Clients served before counting: the first ones import and cache what later ones reuse."""
KINDS = ("hs256", "rs256", "anon")


class KeptWrites:
    """The accepted socket: keeps what is written, reads nothing by itself."""

    def __init__(self) -> None:
        self.protocol: Any = None
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


def masked_text_frame(payload: bytes) -> bytes:
    """A client's text frame (RFC 6455: masked)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    key = (mask * (size // 4 + 1))[:size]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")
    return head + mask + body


def upgrade_request() -> bytes:
    """What picows (the benchmarks' client) sends."""
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n"
    )


def config_and_signer(kind: str) -> tuple[dict[str, Any], Any]:
    """The server's config for ``kind`` (as connects.py's targets) and a token maker."""
    client: dict[str, Any] = {"allowed_origins": ["*"], "ping_interval": "3600s"}
    token: dict[str, Any] = {"hmac_secret_key": SECRET}
    expires = int(time.time()) + 3600

    def sign(i: int) -> str:
        return jwt.encode({"sub": f"user-{i}", "exp": expires}, SECRET, algorithm="HS256")

    if kind == "rs256":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        token = {"rsa_public_key": public.decode()}

        def sign(i: int) -> str:
            return jwt.encode({"sub": f"user-{i}", "exp": expires}, private, algorithm="RS256")

    if kind == "anon":
        client["allow_anonymous_connect_without_token"] = True

        def sign(i: int) -> str:
            return ""

    allowed = {"allow_subscribe_for_client": True, "allow_subscribe_for_anonymous": True}
    channel = {"without_namespace": allowed}
    config = {"client": {**client, "token": token}, "channel": channel, "log": {"level": "error"}}
    return config, sign


async def serve(clients: int, kind: str, profile: str | None) -> None:
    """Connects and subscribes ``WARMUP`` clients, then ``clients`` more while counting."""
    from rotary.server.app import build_server
    from rotary.server.config.load import load_config
    from rotary.server.front_door import FrontDoor

    config, sign = config_and_signer(kind)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        file.write(json.dumps(config))
        file.flush()
        server = build_server(load_config(file.name, {}).config)
    door, deadlines = server.websocket_door, server.deadlines
    assert door is not None
    clients_input = []
    for i in range(WARMUP + clients):
        connect = json.dumps({"id": 1, "connect": {"token": sign(i)}}, separators=(",", ":"))
        subscribe = json.dumps({"id": 2, "subscribe": {"channel": "bench"}}, separators=(",", ":"))
        clients_input.append(
            (upgrade_request(), masked_text_frame(connect.encode()), masked_text_frame(subscribe.encode()))
        )
    sockets: list[KeptWrites] = []

    async def run(batch: list[tuple[bytes, bytes, bytes]]) -> None:
        for head, connect, subscribe in batch:
            sock = KeptWrites()
            sockets.append(sock)
            sock.protocol = FrontDoor(None, deadlines, door)  # type: ignore[arg-type]  # aiohttp never asked
            sock.protocol.connection_made(sock)
            sock.protocol.data_received(head)
            sock.protocol.data_received(connect)
            while len(sock.written) < 2:  # the 101, the connect reply
                await asyncio.sleep(0)
            sock.protocol.data_received(subscribe)
            while len(sock.written) < 3:
                await asyncio.sleep(0)

    await run(clients_input[:WARMUP])
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        await run(clients_input[WARMUP:])
        profiler.disable()
        profiler.dump_stats(profile)
    else:
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
        await run(clients_input[WARMUP:])
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)
    replies = [sock.written[1:] for sock in sockets]
    assert all(b'"id":1,"connect"' in c and b'"id":2,"subscribe"' in s for c, s in replies), replies[-1]


def count(src: str | None, clients: int, kind: str, keep: Path | None) -> float:
    """Runs this file's ``--serve`` half under callgrind and returns instructions per client."""
    with tempfile.TemporaryDirectory(prefix="rotary-connect-path-ir-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ)
        if src:
            env["PYTHONPATH"] = src
        valgrind = ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        serve_args = ["--serve", "--kind", kind, "--clients", str(clients)]
        subprocess.run([*valgrind, sys.executable, __file__, *serve_args], env=env, check=True)
        if keep is not None:
            shutil.copy(out, keep)
        totals = [int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:")]
    return max(totals) / clients


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--kind", choices=KINDS, nargs="+", default=["hs256"])
    parser.add_argument("--alt", help="another checkout's src directory, counted after this one")
    parser.add_argument("--keep", type=Path, help="copy this checkout's callgrind output here")
    parser.add_argument("--profile", help="run under cProfile and write its stats here (no callgrind)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve or args.profile:
        import uvloop

        uvloop.run(serve(args.clients, args.kind[0], args.profile))
        return 0
    for kind in args.kind:
        this = count(None, args.clients, kind, args.keep)
        line = f"{kind}: {this / 1e3:.1f}k instructions per connect + subscribe"
        if args.alt:
            alt = count(args.alt, args.clients, kind, None)
            line += f", {args.alt}: {alt / 1e3:.1f}k ({(this - alt) / alt:+.1%})"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
