"""No ``Server`` response header, as Centrifugo sends none.

Go's ``net/http`` names no server software, so neither does Centrifugo (v6.9.1); aiohttp adds
``Server: Python/x aiohttp/y`` to every response unless it is removed once the headers are final,
which its ``on_response_prepare`` signal allows. A request aiohttp cannot parse reaches no app;
connection_handler.py answers it as net/http does, with no ``Server`` either. Applies to the
standalone server's own apps; a mount's host app keeps its headers.
See https://centrifugal.dev/docs/server/configuration#http_server
"""

from __future__ import annotations

from aiohttp import hdrs, web


async def drop_server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.popall(hdrs.SERVER, None)


def send_no_server_header(*apps: web.Application | None) -> None:
    """Removes the ``Server`` header from every response of ``apps`` (None: an app not built)."""
    for app in apps:
        if app is not None:
            app.on_response_prepare.append(drop_server_header)
