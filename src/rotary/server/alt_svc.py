"""The ``Alt-Svc`` header that points browsers from the TCP listener to HTTP/3.

Centrifugo's TCP handler asks quic-go's HTTP/3 server for its QUIC headers on every response of the
HTTP port: ``Alt-Svc: h3=":<port>"; ma=2592000`` (30 days). quic-go knows the port only from a
listener of its own, and with ``webtransport.enabled`` the UDP socket is served by the WebTransport
server instead, so Centrifugo v6.9.1 then sends no ``Alt-Svc`` at all; a WebSocket upgrade is
answered on the hijacked connection, without it, either. HTTP/3 responses never carry it (see
https://centrifugal.dev/docs/server/configuration#http_serverhttp3).
"""

from __future__ import annotations

from aiohttp import web

from rotary.transports.h3_requests import RequestStream


def advertise_http3(app: web.Application, port: int) -> None:
    """Adds ``Alt-Svc`` for HTTP/3 on ``port`` to the TCP responses of ``app``."""
    value = f'h3=":{port}"; ma=2592000'

    async def add_alt_svc(request: web.Request, response: web.StreamResponse) -> None:
        if response.status != 101 and not isinstance(request.transport, RequestStream):
            response.headers.add("Alt-Svc", value)

    app.on_response_prepare.append(add_alt_svc)
