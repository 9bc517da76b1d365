"""rotary for the benchmark's ASGI targets: the ``rotary`` server built from the bench config (JWT
connects, the HTTP API the publisher calls), with its node's connections also served by the ASGI
mount under uvicorn (httptools, uvloop, the ``websockets-sansio`` WebSocket implementation) on a
second port, in the same process and event loop. The subscribers connect to uvicorn; the CPU
measured is the one process's, so it holds the API and the fan-out as for the standalone target.

``recommended`` runs uvicorn as docs/fastapi.md says to serve rotary: no WebSocket-level pings
(rotary's clients ping in the protocol, as Centrifugo's do) and no permessage-deflate (Centrifugo's
``websocket.compression`` is off by default). ``defaults`` keeps uvicorn's own: a ping to every
connection every 20 s, and deflate for the clients that offer it (the bench's do not).

Usage: ``asgi_rotary.py <config.json> <asgi port> recommended|defaults``. SIGTERM stops uvicorn,
whose signal handling then ends the process.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import uvicorn

from rotary.server.app import build_server, serve
from rotary.server.config.load import parse_config
from rotary.transports.mounts.asgi import asgi_app


async def main(path: Path, asgi_port: int, settings: str) -> None:
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
    recommended: dict[str, Any] = (
        {"ws_ping_interval": None, "ws_per_message_deflate": False} if settings == "recommended" else {}
    )
    options = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=asgi_port,
        lifespan="off",
        http="httptools",
        ws="websockets-sansio",
        log_level="warning",
        access_log=False,
        backlog=65535,
        **recommended,
    )
    await uvicorn.Server(options).serve()
    stop.set()
    await standalone


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
