"""What unidirectional transports share: connect request parsing, the disconnect push, the HTTP
answer to a refused connect (rotary.transports.uni_connect)."""

from __future__ import annotations

import pytest

from rotary.node.errors import ClientError
from rotary.protocol import codes
from rotary.transports.uni_connect import (
    BadConnectRequest,
    CodeToHTTPResponse,
    HTTPAnswer,
    disconnect_push,
    http_answer,
    parse_connect_request,
    sends_disconnect_push,
)


def test_parse_connect_request() -> None:
    request = parse_connect_request(
        '{"token":"t","data":{"a":1},"subs":{"news":{"recover":true}},"name":"n"}'
    )
    assert request.token == "t" and request.data == b'{"a":1}' and request.name == "n"
    assert request.subs["news"].recover is True
    assert parse_connect_request(b"null").token == ""
    assert parse_connect_request(b"{}").token == ""


@pytest.mark.parametrize("data", [b"", b"{oops", b"[]", b'"token"', b'{"token":5}'])
def test_malformed_connect_requests(data: bytes) -> None:
    with pytest.raises(BadConnectRequest):
        parse_connect_request(data)


def test_disconnect_push() -> None:
    assert disconnect_push(codes.DISCONNECT_SHUTDOWN) == b'{"disconnect":{"code":3001,"reason":"shutdown"}}'
    assert sends_disconnect_push(codes.DISCONNECT_SHUTDOWN)
    assert not sends_disconnect_push(codes.DISCONNECT_CONNECTION_CLOSED)
    assert not sends_disconnect_push(codes.DISCONNECT_SLOW)


def test_http_answer_uses_rules_then_500() -> None:
    rules = (CodeToHTTPResponse(3500, 401, ""), CodeToHTTPResponse(109, 403, "renew"))
    assert http_answer(codes.DISCONNECT_INVALID_TOKEN, rules) == HTTPAnswer(401, "invalid token")
    assert http_answer(ClientError(codes.ERROR_TOKEN_EXPIRED), rules) == HTTPAnswer(403, "renew")
    assert http_answer(ClientError(codes.ERROR_EXPIRED), rules) == HTTPAnswer(500, "Internal Server Error")
