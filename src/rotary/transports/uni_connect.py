"""What every unidirectional transport shares: the connect request it is handed, the disconnect push
it sends before closing, and the HTTP answer to a refused connect.

A unidirectional client never sends commands: its connect request comes with the HTTP request (the
`cf_connect` query parameter or the POST body) or as the first WebSocket message, and is JSON in
every case. See https://centrifugal.dev/docs/transports/uni_client_protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from aiohttp import web

from rotary.node.client import ConnectFailure
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolError, ProtocolType, codec_for
from rotary.protocol.json_mapping import fill

CONNECT_PARAM = "cf_connect"
"""Query parameter carrying a JSON connect request (uni_websocket and uni_sse GET)."""


class BadConnectRequest(ValueError):
    """The connect request is not a JSON ConnectRequest object."""


def parse_connect_request(data: bytes | str) -> pb.ConnectRequest:
    """The connect request of a unidirectional client; JSON ``null`` is an empty request."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadConnectRequest(f"invalid JSON: {exc}") from exc
    request = pb.ConnectRequest()
    if obj is None:
        return request
    try:
        fill(request, obj)
    except (ProtocolError, RecursionError) as exc:
        raise BadConnectRequest(str(exc)) from exc
    return request


def disconnect_push(disconnect: codes.Disconnect) -> bytes:
    """The JSON `disconnect` push a unidirectional client gets before the connection ends."""
    push = pb.Push(disconnect=pb.Disconnect(code=disconnect.code, reason=disconnect.reason))
    return codec_for(ProtocolType.JSON).encode_push(push)


def sends_disconnect_push(disconnect: codes.Disconnect) -> bool:
    """Whether closing with this code pushes it first: not when the peer went away (3000), and not to
    a client closed as slow (3008), which does not read what it is sent."""
    return disconnect not in (codes.DISCONNECT_CONNECTION_CLOSED, codes.DISCONNECT_SLOW)


@dataclass(frozen=True, slots=True)
class HTTPAnswer:
    status: int
    body: str


@dataclass(frozen=True, slots=True)
class CodeToHTTPResponse:
    """One `connect_code_to_http_response` rule: a connect error or disconnect code to an answer."""

    code: int
    status: int
    body: str


def http_answer(failure: ConnectFailure, rules: Sequence[CodeToHTTPResponse]) -> HTTPAnswer:
    """The HTTP answer to a refused connect: the matching rule (its body defaults to the error's
    message or the disconnect's reason), else 500 Internal Server Error."""
    if isinstance(failure, codes.Disconnect):
        code, text = failure.code, failure.reason
    else:
        code, text = failure.code, failure.message
    for rule in rules:
        if rule.code == code:
            return HTTPAnswer(rule.status, rule.body or text)
    return HTTPAnswer(500, "Internal Server Error")


def answer(result: HTTPAnswer) -> web.Response:
    return web.Response(status=result.status, text=result.body)
