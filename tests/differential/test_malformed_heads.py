"""Request heads neither server can parse: rotary answers them with Centrifugo's bytes.

Centrifugo's answer is Go net/http's: ``HTTP/1.1 400 Bad Request``, ``Content-Type: text/plain;
charset=utf-8``, ``Connection: close``, the status as the body, then the connection closes. Before
rotary.server.connection_handler, rotary answered with aiohttp's ``HTTP/1.0 400`` quoting the
parser's message and the request's bytes, and ``Server: Python/x aiohttp/y``.

What still differs, from the parsers themselves, is not compared here: net/http refuses a few heads
aiohttp takes (a doubled space in the request line, a ``Host`` with a space, leading blank lines
are waited past), answers a header name with a space ``400 Bad Request: invalid header name``, an
unknown ``Transfer-Encoding`` 501 and a well-formed version other than 1.x 505 (``HTTP/2.0`` and
``HTTP/0.9`` reach rotary's routes; ``HTTP/9.9`` is 400), and takes up to 1 MiB of headers where
aiohttp stops a line at 8190 bytes (rotary then answers net/http's 431, the last test).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from differential.conftest import Pair

HEADS = {
    "header line without a colon": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "control byte in the method": b"FOO\x01 / HTTP/1.1\r\nHost: x\r\n\r\n",
    "no Host": b"GET / HTTP/1.1\r\n\r\n",
    "Content-Length not a number": b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "NUL in a header value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    "Host twice": b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "Content-Length twice": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "not HTTP": b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
    "two-digit minor version": b"GET / HTTP/1.10\r\nHost: x\r\n\r\n",
    "DEL in the target": b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    "WebSocket upgrade without Host": (
        b"GET /connection/websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ),
}
VALID = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
NOT_FOUND_BODY = b"404 page not found\n"


async def exchange(http_url: str, *writes: bytes) -> list[bytes]:
    """Writes each of ``writes`` on one connection, reading after each: up to the 404 body after
    all but the last, until the server closes after the last."""
    where = urlsplit(http_url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    answers = []
    try:
        for n, data in enumerate(writes):
            writer.write(data)
            last = n == len(writes) - 1
            read = reader.read(-1) if last else reader.readuntil(NOT_FOUND_BODY)
            answers.append(await asyncio.wait_for(read, 30))
    finally:
        writer.close()
    return answers


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
async def test_a_head_neither_can_parse_gets_the_same_bytes(pair: Pair, head: bytes) -> None:
    centrifugo = await exchange(pair.centrifugo.http_url, head)
    rotary = await exchange(pair.rotary.http_url, head)
    assert rotary == centrifugo
    assert rotary[0].startswith(b"HTTP/1.1 400 Bad Request")
    assert b"Server:" not in rotary[0]


async def test_an_unparsable_request_after_a_good_one_on_the_same_connection(pair: Pair) -> None:
    bad = HEADS["header line without a colon"]
    centrifugo = await exchange(pair.centrifugo.http_url, VALID, bad)
    rotary = await exchange(pair.rotary.http_url, VALID, bad)
    assert rotary[1] == centrifugo[1]
    assert all(answer.startswith(b"HTTP/1.1 404 Not Found") for answer in (rotary[0], centrifugo[0]))


async def test_a_header_line_over_the_limit_gets_net_http_s_431(pair: Pair) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n"
    [answer] = await exchange(pair.rotary.http_url, head)
    status = b"431 Request Header Fields Too Large"
    assert (
        answer
        == b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
        + status
    )
