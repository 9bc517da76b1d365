"""rotary for the benchmark's ASGI target: the ``rotary`` server built from the bench config (JWT
connects, the HTTP API the publisher calls), with its node's connections also served by the ASGI
mount under uvicorn (httptools, uvloop, its default WebSocket implementation) on a second port, in
the same process and event loop. The subscribers connect to uvicorn; the CPU measured is the one
process's, so it holds the API and the fan-out as for the standalone target.

Usage: ``asgi_rotary.py <config.json> <asgi port>``. SIGTERM stops uvicorn, whose signal handling
then ends the process.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvicorn

from rotary.server.app import build_server, serve
from rotary.server.config.load import parse_config
from rotary.transports.mounts.asgi import asgi_app


async def main(path: Path, asgi_port: int) -> None:
    config = parse_config(str(path), {}, {}).config
    server = build_server(config)
    stop = asyncio.Event()
    standalone = asyncio.get_running_loop().create_task(serve(server, stop))
    while True:  # the node is started once the standalone port listens
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", config.http_server.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        break
    app = asgi_app(server.node, allowed_origins=["*"])
    options = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=asgi_port,
        lifespan="off",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=65535,
    )
    await uvicorn.Server(options).serve()
    stop.set()
    await standalone


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
