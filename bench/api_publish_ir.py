"""Instructions rotary runs per HTTP API ``publish``, over a real socket, counted by callgrind.

fanout.py and api_publish.py time the API publish in server CPU, which the host's other load makes
noisy; fanout_ir.py counts a publish together with its fan-out. This counts one ``POST /api/publish``
alone, exactly: rotary (``.venv/bin/rotary -c <config>``: the standalone server, its front door,
aiohttp, the API, the node and the memory engine) runs under valgrind's callgrind, and this process
sends ``--publications`` requests one after another on one keep-alive HTTP/1.1 connection, each
with ``X-API-Key`` and each after the previous response (and, with subscribers, after every
subscriber received the previous publication). Instrumentation is on only around those requests,
so the count is the server's user-space instructions per publish: aiohttp's parse, Request,
router, middlewares and response, the API's auth, decoding and executor, the node's publish and
the engine's history, uvloop's read and write path (not the kernel's). Four cases, one channel each
on the same server:

- ``plain``: no history, no subscriber (the API and the node's publish path only);
- ``plain+100``: no history, ``--subscribers`` WebSocket subscribers (adds the fan-out);
- ``history``: a namespace with history (size 100, TTL 300 s), no subscriber;
- ``history+100``: history and the subscribers.

``--alt <src>`` counts another checkout's ``src`` (e.g. ``git -C /work/main archive HEAD src | tar
-x -C /tmp/alt-api``) in the same run, for a before/after comparison. ``--keep DIR`` keeps the
callgrind outputs (one per case) for callgrind_annotate; ``--profile DIR`` runs the server under
cProfile instead (bench/profiled_rotary.py), for where Python's time goes. Pings are off (one per
connection per hour), so nothing but the requests runs while counting. Both trees must answer the
same bytes: the first response of each case (without its Date header and epoch) is compared, and a
difference is reported.

Run from the repository root: ``.venv/bin/python bench/api_publish_ir.py --alt /tmp/alt-api/src``.
See bench/README.md, "The HTTP API publish".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Stats, close_subscribers, connect_subscribers
from system import free_port, wait_listening

SECRET = "api-publish-ir-secret-of-32-bytes"
API_KEY = "api-publish-ir-key"
WARMUP = 30
"""Publications per case before counting: the first ones import and cache what later ones reuse."""
CASES = ("plain", "plain+100", "history", "history+100")
DATE = re.compile(rb"\r\nDate: [^\r]*")
EPOCH = re.compile(rb'"epoch":"[^"]*"')
CONTENT_LENGTH = re.compile(rb"\r\nContent-Length: (\d+)", re.IGNORECASE)


def write_config(workdir: Path, port: int) -> Path:
    """Memory engine; the namespace ``hist`` keeps history, channels without one do not."""
    subscribe = {"allow_subscribe_for_client": True}
    config: dict[str, Any] = {
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"], "ping_interval": "3600s"},
        "channel": {
            "without_namespace": subscribe,
            "namespaces": [{"name": "hist", "history_size": 100, "history_ttl": "300s", **subscribe}],
        },
        "http_api": {"key": API_KEY},
        "http_server": {"port": port},
        "log": {"level": "error"},
    }
    path = workdir / "config.json"
    path.write_text(json.dumps(config))
    return path


def channel_of(case: str) -> str:
    return ("hist:" if case.startswith("history") else "") + "bench-" + case.replace("+", "-")


class KeepAlive(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight at a time."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiting: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        match = CONTENT_LENGTH.search(self._buffer, 0, end + 2)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(self._buffer) >= total and self._waiting is not None:
            self._waiting.set_result(bytes(self._buffer[:total]))
            del self._buffer[:total]
            self._waiting = None

    async def request(self, data: bytes) -> bytes:
        self._waiting = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return await asyncio.wait_for(self._waiting, 600)


def publish_request(port: int, channel: str, stamp: int) -> bytes:
    body = b'{"channel":"%s","data":{"t":%d}}' % (channel.encode(), stamp)
    head = (
        f"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Counted:
    per_publish: dict[str, float] = field(default_factory=dict)
    first_response: dict[str, bytes] = field(default_factory=dict)


def callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def dump_total(out: Path, before: set[Path]) -> tuple[Path, int]:
    """The dump callgrind wrote since ``before`` and its instruction total."""
    deadline = time.monotonic() + 120
    while True:
        new = sorted(set(out.parent.glob(out.name + ".*")) - before)
        if new and "totals:" in new[-1].read_text():
            totals = [
                int(line.split()[1])
                for line in new[-1].read_text().splitlines()
                if line.startswith("totals:")
            ]
            return new[-1], max(totals)
        if time.monotonic() > deadline:
            raise RuntimeError("callgrind wrote no dump")
        time.sleep(0.2)


async def publish_all(publish: Callable[[int], Awaitable[bytes]], case: str, publications: int) -> None:
    for i in range(publications):
        response = await publish(1000 + i)
        if not response.startswith(b"HTTP/1.1 200") or b'"error"' in response:
            raise RuntimeError(f"{case}: {response!r}")


async def count(src: str | None, args: argparse.Namespace, workdir: Path, label: str) -> Counted:
    """Starts rotary (``src``'s when given) under callgrind and counts every case."""
    port = free_port()
    out = workdir / f"callgrind-{label}.out"
    valgrind = ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    command = [str(Path(sys.executable).parent / "rotary")]
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same str hashes (and set orders) in every run
    if src:
        env["PYTHONPATH"] = src
    if args.profile:  # cProfile instead of callgrind (bench/profiled_rotary.py)
        valgrind = []
        command = [sys.executable, str(Path(__file__).resolve().parent / "profiled_rotary.py")]
        env["BENCH_PROFILE"] = str(args.profile)
    process = subprocess.Popen([*valgrind, *command, "-c", str(write_config(workdir, port))], env=env)
    counted = Counted()
    stats = Stats()
    try:
        wait_listening(port, process, 900.0)
        token = jwt.encode({"sub": "bench"}, SECRET, algorithm="HS256")
        url = f"ws://127.0.0.1:{port}/connection/websocket"
        subscribers = []
        for case in args.cases:
            if case.endswith("+100"):
                subscribers += await connect_subscribers(
                    url, args.subscribers, token, channel_of(case), stats, timeout=900
                )
        _, client = await asyncio.get_running_loop().create_connection(KeepAlive, "127.0.0.1", port)
        for case in args.cases:
            expected = args.subscribers if case.endswith("+100") else 0
            channel = channel_of(case)

            async def publish(stamp: int) -> bytes:
                stats.reset()
                response = await client.request(publish_request(port, channel, stamp))  # noqa: B023
                while stats.deliveries < expected:  # noqa: B023
                    await asyncio.sleep(0.001)
                return response

            first = await publish(1)
            counted.first_response[case] = EPOCH.sub(b'"epoch":"-"', DATE.sub(b"", first))
            for i in range(WARMUP):
                await publish(2 + i)
            before = set(workdir.glob(out.name + ".*"))
            if args.profile:
                await publish_all(publish, case, args.publications)
                continue
            callgrind(process.pid, "-i", "on")
            await publish_all(publish, case, args.publications)
            callgrind(process.pid, "-i", "off")
            callgrind(process.pid, f"--dump={case}")
            dump, total = dump_total(out, before)
            counted.per_publish[case] = total / args.publications
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(dump, args.keep / f"callgrind-{label}-{case}.out")
        if stats.errors:
            raise RuntimeError(f"subscriber errors: {stats.errors[:3]}")
        assert client.transport is not None
        client.transport.close()
        await close_subscribers(subscribers)
    finally:
        process.terminate()
        process.wait(120)
    return counted


async def main_async(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="api-publish-ir-"))
    this = await count(None, args, workdir, "this")
    if args.profile:
        print(f"cProfile stats in {args.profile} (python -m pstats)")
        return
    alt = await count(args.alt, args, workdir, "alt") if args.alt else None
    for case in args.cases:
        line = f"{case}: {this.per_publish[case] / 1e3:.1f}k instructions per publish"
        if alt is not None:
            other = alt.per_publish[case]
            line += f", {args.alt}: {other / 1e3:.1f}k ({(this.per_publish[case] - other) / other:+.1%})"
            if alt.first_response[case] != this.first_response[case]:
                line += f"\n  RESPONSES DIFFER: {this.first_response[case]!r} vs {alt.first_response[case]!r}"
        print(line, flush=True)
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--publications", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--alt", help="another checkout's src directory, counted after this one")
    parser.add_argument("--keep", type=Path, help="keep the callgrind outputs in this directory")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--profile", type=Path, help="run under cProfile, stats in this directory")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
