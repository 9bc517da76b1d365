"""Unidirectional SSE (EventSource): JSON pushes as `data:` events on a `text/event-stream` response.

A browser's EventSource can only GET, so the connect request travels in the `cf_connect` query
parameter; a POST may carry it as its body instead (bounded by `uni_sse.max_request_body_size`).
Pings are `{}` events, like every other push. See https://centrifugal.dev/docs/transports/uni_sse.
"""

from __future__ import annotations

import logging

from aiohttp import web

from rotary.node.node import Node
from rotary.protocol import pb
from rotary.protocol.uni_framing import SSE_PREAMBLE, sse_events
from rotary.transports.uni_connect import (
    CONNECT_PARAM,
    BadConnectRequest,
    CodeToHTTPResponse,
    parse_connect_request,
)
from rotary.transports.uni_stream import (
    Handler,
    OriginCheck,
    StreamFormat,
    connect_request_from_body,
    uni_stream_handler,
)

log = logging.getLogger("rotary.transports.uni_sse")

SSE_FORMAT = StreamFormat(
    name="uni_sse",
    body_framing=sse_events,
    headers={"Content-Type": "text/event-stream; charset=utf-8"},
    preamble=SSE_PREAMBLE,
)


def uni_sse_handler(
    node: Node,
    *,
    max_request_body_size: int = 65536,
    http_rules: tuple[CodeToHTTPResponse, ...] | None = None,
    check_origin: OriginCheck | None = None,
) -> Handler:
    """An aiohttp handler serving unidirectional SSE connections for ``node``."""

    async def read_request(request: web.Request) -> pb.ConnectRequest | web.Response:
        if request.method == "GET":
            param = request.query.get(CONNECT_PARAM)
            if not param:
                return pb.ConnectRequest()
            try:
                return parse_connect_request(param)
            except BadConnectRequest as exc:
                log.info("error unmarshalling connect request: %s", exc)
                return web.Response(status=400, text=f"malformed connect request: {exc}\n")
        if request.method == "POST":
            return await connect_request_from_body(request, max_request_body_size)
        return web.Response(status=405, text="method not allowed\n")

    return uni_stream_handler(
        node,
        SSE_FORMAT,
        read_request,
        http_rules=http_rules,
        check_origin=check_origin,
    )
