"""Centrifugo's development helper commands: ``configdoc`` and ``serve``.

``configdoc --markdown`` prints the documentation of every config key; without it the same
documentation is served as a web page (its records embedded as JSON) on ``--port``. ``serve`` is a
static file server for trying client code against a local rotary. Neither is meant for production.
See https://centrifugal.dev/docs/server/console_commands
"""

from __future__ import annotations

import argparse
import html
import json
import os
from typing import Any

from rotary.server.config.doc import FieldDoc, MarkdownOptions, document, markdown

DOC_DATA_ID = "config-docs"
"""Id of the ``<script type="application/json">`` element holding the records on the configdoc page."""


def register(commands: Any) -> None:
    doc = commands.add_parser(
        "configdoc", help="Show Centrifugo configuration documentation generated from source code"
    )
    doc.add_argument("-m", "--markdown", action="store_true", help="output markdown to stdout")
    doc.add_argument("-s", "--section", default="", help="filter by top-level section name")
    doc.add_argument("-p", "--port", type=int, default=6060, help="port to run server on")
    doc.add_argument("-l", "--base-level", type=int, default=0, help="base level to use")
    doc.set_defaults(handler=cmd_configdoc)
    serve = commands.add_parser("serve", help="Run static file server (for development only)")
    serve.add_argument("-d", "--dir", default="./", help="path to directory")
    serve.add_argument("-p", "--port", type=int, default=3000, help="port to serve on")
    serve.add_argument("-a", "--address", default="", help="interface to serve on (default: all interfaces)")
    serve.set_defaults(handler=cmd_serve)


def cmd_configdoc(args: argparse.Namespace) -> int:
    docs = document()
    if args.markdown:
        print(markdown(docs, MarkdownOptions(section=args.section, base_level=args.base_level)))
        return 0
    shown = [doc for doc in docs if doc.field.startswith(args.section)]
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=doc_page(shown), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    print(f"see http://localhost:{args.port}")
    return _run(app, "", args.port)


def doc_page(docs: list[FieldDoc]) -> str:
    """The documentation as one HTML page, the records embedded for scripts and tests to read."""
    body = html.escape(markdown(docs, MarkdownOptions(markdown=False)))
    data = json.dumps([doc.as_json() for doc in docs]).replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>rotary configuration options</title></head><body>\n"
        f'<script type="application/json" id="{DOC_DATA_ID}">{data}</script>\n'
        f"<pre>{body}</pre>\n</body></html>\n"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    directory = os.path.realpath(args.dir)
    host = f"[{args.address}]" if ":" in args.address else args.address
    print(f"start serving {args.dir} on {host}:{args.port}")

    async def index(request: web.Request) -> web.StreamResponse:
        """A directory answers with its index.html, else with a listing, as Go's file server does."""
        folder = os.path.realpath(os.path.join(directory, request.match_info["path"]))
        if os.path.commonpath([folder, directory]) != directory or not os.path.isdir(folder):
            raise web.HTTPNotFound()
        page = os.path.join(folder, "index.html")
        if os.path.isfile(page):
            return web.FileResponse(page)
        return web.Response(text=listing(folder), content_type="text/html")

    app = web.Application()
    app.router.add_get("/{path:(.*/)?}", index)
    if os.path.isdir(directory):  # else every path is 404, as with Go's file server
        app.router.add_static("/", directory)
    return _run(app, args.address, args.port)


def listing(folder: str) -> str:
    names = sorted(
        name + ("/" if os.path.isdir(os.path.join(folder, name)) else "") for name in os.listdir(folder)
    )
    links = "".join(f'<a href="{html.escape(name)}">{html.escape(name)}</a>\n' for name in names)
    return f'<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n{links}</pre>\n'


def _run(app: Any, address: str, port: int) -> int:
    from aiohttp import web

    try:
        web.run_app(app, host=address or None, port=port, print=None, access_log=None)
    except OSError as exc:
        reason = f"bind: {os.strerror(exc.errno).lower()}" if exc.errno else str(exc)
        print(f"listen tcp {address}:{port}: {reason}")  # Go's wording
        return 1
    return 0
