"""HTTP streaming, SSE and the emulation endpoint over ASGI ``http`` scopes.

The same connection side as the aiohttp endpoints (transports/stream.py: StreamTransport and
``run_emulated``; emulation.py: ``emulate``), with the ASGI server doing the chunked encoding: a
frame is the body bytes alone, written through :class:`AsgiSender`. The ASGI server says a peer
has gone only to an app awaiting ``receive``, so each stream has one task waiting there for
``http.disconnect``. Answers to bad input are the standalone server's (the status and text of
transports/stream.py's ``post_body``).
See https://centrifugal.dev/docs/transports/http_stream and https://centrifugal.dev/docs/transports/sse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qs

from rotary.node.client import Client
from rotary.node.node import Node
from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.streaming import SSE_PREAMBLE, http_stream_body, sse_event
from rotary.transports.emulation import PROTOBUF_CONTENT_TYPE, emulate
from rotary.transports.http_stream import NAME as HTTP_STREAM
from rotary.transports.mounts.asgi_send import AsgiSender, Message, Receive, Scope, Send
from rotary.transports.sse import CONNECT_PARAM
from rotary.transports.sse import NAME as SSE
from rotary.transports.stream import (
    DEFAULT_MAX_BODY,
    PREFLIGHT_HEADERS,
    STREAM_HEADERS,
    WRITE_TIMEOUT,
    BodyFraming,
    StreamTransport,
    cors_headers,
    run_emulated,
)

END_OF_BODY: Message = {"type": "http.response.body", "body": b"", "more_body": False}


@dataclass(frozen=True, slots=True)
class Request:
    """What the endpoints read of an ``http`` scope."""

    scope: Scope
    receive: Receive
    send: Send
    headers: Mapping[str, str]
    """Lower-cased names; the last value of a repeated header."""
    origin_allowed: bool

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    def cors(self) -> dict[str, str]:
        if not self.origin_allowed:
            return {}
        return cors_headers(
            self.headers.get("origin", ""), self.headers.get("access-control-request-headers", "")
        )


class BodyTooLarge(Exception):
    pass


class PeerGone(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; BodyTooLarge past ``limit`` bytes (0: the default), PeerGone when the
    client disconnects first."""
    limit = limit or DEFAULT_MAX_BODY
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise PeerGone
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise BodyTooLarge
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(
    request: Request, status: int, text: str = "", headers: Mapping[str, str] | None = None
) -> None:
    """A whole response with the CORS headers an allowed origin gets."""
    fields = [(b"content-type", b"text/plain; charset=utf-8")] if text else []
    fields += [(k.lower().encode(), v.encode()) for k, v in {**request.cors(), **(headers or {})}.items()]
    await request.send({"type": "http.response.start", "status": status, "headers": fields})
    await request.send({"type": "http.response.body", "body": text.encode()})


async def post_body(request: Request, limit: int) -> bytes | None:
    """The body of a POST endpoint, or None once the request was answered: the CORS preflight, 405
    for another method, 400 when the body cannot be read, 413 past ``limit``."""
    if request.method == "OPTIONS":
        await respond(request, 204, headers=PREFLIGHT_HEADERS)
        return None
    if request.method != "POST":
        await respond(request, 405, "method not allowed")
        return None
    return await _body(request, limit)


async def _body(request: Request, limit: int) -> bytes | None:
    try:
        return await read_body(request.receive, limit)
    except BodyTooLarge:
        await respond(request, 413, "request body too large")
    except PeerGone:
        pass
    return None


async def serve_http_stream(request: Request, node: Node, limit: int) -> None:
    first = await post_body(request, limit)
    if first is None:
        return
    protobuf = request.headers.get("content-type", "") == PROTOBUF_CONTENT_TYPE
    protocol = ProtocolType.PROTOBUF if protobuf else ProtocolType.JSON
    content_type = PROTOBUF_CONTENT_TYPE if protobuf else "text/plain; charset=utf-8"
    framing = partial(http_stream_body, protocol=protocol)
    await _stream(request, node, HTTP_STREAM, protocol, framing, first, content_type)


async def serve_sse(request: Request, node: Node, limit: int) -> None:
    if request.method == "GET":
        query = parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
        first = query.get(CONNECT_PARAM, [""])[0].encode()
        if not first:
            await respond(request, 400, f"no {CONNECT_PARAM} query parameter")
            return
    elif request.method == "POST":
        body = await _body(request, limit)
        if body is None:
            return
        first = body
    else:
        await respond(request, 405, "method not allowed")
        return
    content_type = "text/event-stream; charset=utf-8"
    await _stream(request, node, SSE, ProtocolType.JSON, sse_event, first, content_type, SSE_PREAMBLE)


async def serve_emulation(request: Request, node: Node, limit: int) -> None:
    body = await post_body(request, limit)
    if body is None:
        return
    status, text = await emulate(node, body, request.headers.get("content-type", "") == PROTOBUF_CONTENT_TYPE)
    await respond(request, status, text)


async def _stream(
    request: Request,
    node: Node,
    name: str,
    protocol: ProtocolType,
    framing: BodyFraming,
    first: bytes,
    content_type: str,
    preamble: bytes = b"",
) -> None:
    """Runs one emulated connection as the body of the response."""
    headers = {**STREAM_HEADERS, "Content-Type": content_type, **request.cors()}
    fields = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await request.send({"type": "http.response.start", "status": 200, "headers": fields})
    sender = AsgiSender(request.send, _body_message, b"".join)
    transport = StreamTransport(name, protocol, framing, sender, chunked=False)
    if preamble:
        transport.write_prepared(preamble)
    remote = request.scope.get("client")
    client = Client(node, transport, dict(request.headers), remote[0] if remote else "")
    client.request = request.scope
    watch = asyncio.get_running_loop().create_task(_until_disconnect(request.receive, client, sender))
    try:
        await run_emulated(client, transport, first)
    finally:
        watch.cancel()
        sender.end(END_OF_BODY)
        try:
            async with asyncio.timeout(WRITE_TIMEOUT):
                await sender.drained()
        except TimeoutError:
            sender.abort()


def _body_message(data: bytes) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": True}


async def _until_disconnect(receive: Receive, client: Client, sender: AsgiSender) -> None:
    """Closes the connection when the ASGI server says its peer has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass
    sender.abort()
    client.close(codes.DISCONNECT_CONNECTION_CLOSED)
