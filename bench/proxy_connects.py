"""Connect rate with the connect proxy (HTTP and GRPC backend) next to JWT connects, in one run.

Two rotary processes: one whose connect proxy is HTTP, one whose is GRPC; on the first, connects
with a token measure the JWT path (a token skips the proxy) and connects without one the HTTP
proxy. The backend answers at once (a user, nothing else) from its own process, so the rows
measure rotary's side of a proxied connect. Rounds interleave the three kinds; the report gives
each kind's median connects per second and its ratio to JWT.
See https://centrifugal.dev/docs/server/proxy#connect-proxy

    python bench/proxy_connects.py [--connects 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
from loadgen import Stats, close_subscribers, connect_subscribers
from system import free_port, wait_listening

BENCH = Path(__file__).resolve().parent
SECRET = "bench-hmac-secret-not-for-production"


def serve_backend(http_port: int, grpc_port: int) -> None:
    """The backend process: Connect answers ``{"result": {"user": "bench"}}`` over HTTP and GRPC."""
    import grpc
    from aiohttp import web

    from rotary.server.proxy import messages

    answer = json.dumps({"result": {"user": "bench"}}).encode()

    async def http(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    async def connect(request: Any, context: Any) -> Any:
        return messages.ConnectResponse(result=messages.ConnectResult(user="bench"))

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/connect", http)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", http_port).start()
        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(
            connect,
            request_deserializer=messages.ConnectRequest.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(messages.SERVICE, {"Connect": handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        await server.start()
        await asyncio.Event().wait()

    asyncio.run(main())


def start_rotary(workdir: Path, name: str, endpoint: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = {
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "allowed_origins": ["*"],
            "proxy": {"connect": {"enabled": True, "endpoint": endpoint, "timeout": "5s"}},
        },
        "http_server": {"port": port},
        "log": {"level": "error"},
    }
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen([str(Path(sys.executable).parent / "rotary"), "-c", str(path)], cwd=workdir)
    wait_listening(port, process)
    return process, f"ws://127.0.0.1:{port}/connection/websocket"


async def rate(url: str, count: int, token: str) -> float:
    """Connects per second of ``count`` fresh clients, 64 at a time, until every connect reply."""
    started = time.perf_counter()
    transports = await connect_subscribers(url, count, token, None, Stats())
    elapsed = time.perf_counter() - started
    await close_subscribers(transports)
    return count / elapsed


async def measure(
    urls: dict[str, str], tokens: dict[str, str], count: int, rounds: int
) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {kind: [] for kind in urls}
    await rate(urls["jwt"], min(count, 200), tokens["jwt"])  # warm both servers and the backend
    await rate(urls["grpc proxy"], min(count, 200), "")
    for _ in range(rounds):
        for kind, url in urls.items():
            rates[kind].append(await rate(url, count, tokens[kind]))
            await asyncio.sleep(0.5)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connects", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-backend", nargs=2, type=int, metavar=("HTTP_PORT", "GRPC_PORT"))
    args = parser.parse_args(argv)
    if args.serve_backend:
        serve_backend(*args.serve_backend)
        return 0
    http_port, grpc_port = free_port(), free_port()
    backend = subprocess.Popen([sys.executable, __file__, "--serve-backend", str(http_port), str(grpc_port)])
    servers: list[subprocess.Popen[bytes]] = []
    try:
        wait_listening(http_port, backend)
        with tempfile.TemporaryDirectory() as directory:
            workdir = Path(directory)
            http_rotary, http_url = start_rotary(workdir, "http", f"http://127.0.0.1:{http_port}/connect")
            servers.append(http_rotary)
            grpc_rotary, grpc_url = start_rotary(workdir, "grpc", f"grpc://127.0.0.1:{grpc_port}")
            servers.append(grpc_rotary)
            urls = {"jwt": http_url, "http proxy": http_url, "grpc proxy": grpc_url}
            token = jwt.encode({"sub": "bench"}, SECRET, algorithm="HS256")
            tokens = {"jwt": token, "http proxy": "", "grpc proxy": ""}
            rates = asyncio.run(measure(urls, tokens, args.connects, args.rounds))
    finally:
        for process in [*servers, backend]:
            process.terminate()
            process.wait(20)
    jwt_rate = statistics.median(rates["jwt"])
    print(f"{'kind':<12} {'connects/s (median)':>20} {'vs JWT':>8}   rounds")
    for kind, values in rates.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"{kind:<12} {median:>20.0f} {median / jwt_rate:>8.2f}   {rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
