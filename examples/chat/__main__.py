"""``python -m examples.chat [--host H] [--port P]``: the chat under uvicorn."""

from __future__ import annotations

import argparse

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.chat", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # The settings docs/fastapi.md gives for rotary: the cheapest framing per message, no WebSocket
    # pings on top of the protocol's, no per-connection compression.
    uvicorn.run(
        "examples.chat.app:app",
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_ping_interval=None,
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
