"""Bidirectional HTTP streaming: ``POST /connection/http_stream``, the emulation of WebSocket over fetch.

The request body carries the first commands (connect); the chunked response streams replies and
pushes, JSON one per line or Protobuf length-prefixed (``Content-Type: application/octet-stream``
selects Protobuf). Later commands come through the emulation endpoint.
See https://centrifugal.dev/docs/transports/http_stream.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web

from rotary.node.node import Node
from rotary.protocol.codec import ProtocolType
from rotary.protocol.streaming import http_stream_body
from rotary.transports.stream import (
    Handler,
    OriginCheck,
    PeerWatch,
    post_body,
    serve_stream,
)

NAME = "http_stream"


def http_stream_handler(
    node: Node,
    *,
    max_request_body_size: int,
    check_origin: OriginCheck,
    host_request: bool = False,
) -> Handler:
    """An aiohttp handler (for every method) serving HTTP-streaming connections of ``node``."""
    watch = PeerWatch()

    async def handle(request: web.Request) -> web.StreamResponse:
        first = await post_body(request, check_origin, max_request_body_size)
        if not isinstance(first, bytes):
            return first
        protobuf = request.headers.get("Content-Type", "") == "application/octet-stream"
        protocol = ProtocolType.PROTOBUF if protobuf else ProtocolType.JSON
        return await serve_stream(
            request,
            node,
            watch,
            NAME,
            protocol,
            partial(http_stream_body, protocol=protocol),
            first,
            check_origin,
            content_type="application/octet-stream" if protobuf else "text/plain; charset=utf-8",
            host_request=host_request,
        )

    return handle
