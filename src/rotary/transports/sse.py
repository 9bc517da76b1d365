"""Bidirectional SSE: ``GET /connection/sse?cf_connect=...`` (or POST), WebSocket emulated over EventSource.

The connect command comes in the ``cf_connect`` query parameter (a POST body also works); the
``text/event-stream`` response carries replies and pushes as events. SSE is JSON only. Later commands
come through the emulation endpoint. See https://centrifugal.dev/docs/transports/sse.
"""

from __future__ import annotations

from aiohttp import web

from rotary.node.node import Node
from rotary.protocol.codec import ProtocolType
from rotary.protocol.streaming import SSE_PREAMBLE, sse_event
from rotary.transports.body import BodyError, read_body
from rotary.transports.stream import (
    DEFAULT_MAX_BODY,
    Handler,
    OriginCheck,
    PeerWatch,
    plain,
    serve_stream,
)

NAME = "sse"
CONNECT_PARAM = "cf_connect"


def sse_handler(
    node: Node,
    *,
    max_request_body_size: int,
    check_origin: OriginCheck,
    host_request: bool = False,
) -> Handler:
    """An aiohttp handler (for every method) serving SSE connections of ``node``."""
    watch = PeerWatch()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            first: bytes | None = request.query.get(CONNECT_PARAM, "").encode()
            if not first:
                return plain(request, check_origin, 400, f"no {CONNECT_PARAM} query parameter")
        elif request.method == "POST":
            try:
                first = await read_body(request, max_request_body_size or DEFAULT_MAX_BODY)
            except BodyError:
                return plain(request, check_origin, 400, "unreadable request body")
            if first is None:
                return plain(request, check_origin, 413, "request body too large")
        else:
            return plain(request, check_origin, 405, "method not allowed")
        return await serve_stream(
            request,
            node,
            watch,
            NAME,
            ProtocolType.JSON,
            sse_event,
            first,
            check_origin,
            content_type="text/event-stream; charset=utf-8",
            preamble=SSE_PREAMBLE,
            host_request=host_request,
        )

    return handle
