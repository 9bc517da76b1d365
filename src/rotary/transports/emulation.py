"""``POST /emulation``: the client-to-server half of HTTP-streaming and SSE connections.

The body is an EmulationRequest ``{node, session, data}`` (JSON, or Protobuf with
``Content-Type: application/octet-stream``) naming the node that owns the session; any node may
receive it and hands it on through the control plane, so no sticky sessions are needed. Answers as
centrifuge does: 204 once handed on (also for a session its node no longer has: the stream has
ended), 404 for a node that is not live, 400 for an unreadable body, 413 for a too large one.
See https://centrifugal.dev/docs/transports/overview (bidirectional emulation).
"""

from __future__ import annotations

import logging

from aiohttp import web

from rotary.engines.base import EngineError
from rotary.node.node import Node
from rotary.protocol.codec import ProtocolError
from rotary.protocol.streaming import decode_emulation_request
from rotary.transports.stream import (
    Handler,
    OriginCheck,
    add_cors_headers,
    plain,
    post_body,
)

log = logging.getLogger("rotary.transports.emulation")


def emulation_handler(node: Node, *, max_request_body_size: int, check_origin: OriginCheck) -> Handler:
    """An aiohttp handler (for every method) routing emulation requests to their sessions."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await post_body(request, check_origin, max_request_body_size)
        if not isinstance(body, bytes):
            return body
        protobuf = request.headers.get("Content-Type", "") == PROTOBUF_CONTENT_TYPE
        status, text = await emulate(node, body, protobuf)
        if status != 204:
            return plain(request, check_origin, status, text)
        response = web.Response(status=204)
        add_cors_headers(request, response, check_origin)
        return response

    return handle


PROTOBUF_CONTENT_TYPE = "application/octet-stream"


async def emulate(node: Node, body: bytes, protobuf: bool) -> tuple[int, str]:
    """Hands one emulation request on; the HTTP status and text of the answer, whatever serves it."""
    try:
        emulation = decode_emulation_request(body, protobuf)
    except ProtocolError as exc:
        log.info("unreadable emulation request: %s", exc)
        return 400, "bad emulation request"
    try:
        known = await node.emulate(emulation.node, emulation.session, emulation.data)
    except EngineError as exc:
        log.error("could not hand an emulation request to node %s: %s", emulation.node, exc)
        return 500, "internal server error"
    if not known:
        return 404, "node not found"
    return 204, ""
