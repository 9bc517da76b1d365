"""``python -m examples.dashboard [--host H] [--port P] [--interval S]``: the dashboard on aiohttp."""

from __future__ import annotations

import argparse

from aiohttp import web

from examples.dashboard.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.dashboard", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    args = parser.parse_args()
    web.run_app(create_app(interval=args.interval), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
