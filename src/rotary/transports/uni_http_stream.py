"""Unidirectional HTTP streaming: POST a JSON connect request, read newline-delimited JSON pushes.

Made for `fetch` with a ReadableStream body: every push, pings (`{}`) included, is one JSON line.
The connect request body is bounded by `uni_http_stream.max_request_body_size`; OPTIONS answers a
CORS preflight. See https://centrifugal.dev/docs/transports/uni_http_stream.
"""

from __future__ import annotations

from aiohttp import web

from rotary.node.node import Node
from rotary.protocol import pb
from rotary.protocol.uni_framing import json_lines
from rotary.transports.uni_connect import CodeToHTTPResponse
from rotary.transports.uni_stream import (
    Handler,
    OriginCheck,
    StreamFormat,
    connect_request_from_body,
    uni_stream_handler,
)

HTTP_STREAM_FORMAT = StreamFormat(
    name="uni_http_stream",
    body_framing=json_lines,
    headers={"Content-Type": "text/plain; charset=utf-8"},
)

_PREFLIGHT_HEADERS = {"Access-Control-Max-Age": "300", "Access-Control-Allow-Methods": "POST, OPTIONS"}


def uni_http_stream_handler(
    node: Node,
    *,
    max_request_body_size: int = 65536,
    http_rules: tuple[CodeToHTTPResponse, ...] | None = None,
    check_origin: OriginCheck | None = None,
) -> Handler:
    """An aiohttp handler serving unidirectional HTTP-streaming connections for ``node``."""

    async def read_request(request: web.Request) -> pb.ConnectRequest | web.Response:
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=_PREFLIGHT_HEADERS)
        if request.method != "POST":
            return web.Response(status=405, text="method not allowed\n")
        return await connect_request_from_body(request, max_request_body_size)

    return uni_stream_handler(
        node,
        HTTP_STREAM_FORMAT,
        read_request,
        http_rules=http_rules,
        check_origin=check_origin,
    )
