"""The standalone server's front door (server/front_door.py) through real sockets on ``serve``, on
asyncio's loop and on uvloop (the server's own; see conftest.py), beside the same server with the
front door off (``prometheus.instrument_http_handlers`` makes aiohttp take every upgrade):

- every well-formed upgrade of the handshake tests gets the same bytes from both servers (but for
  the Date header's second), and the front door served it; every malformed one gets aiohttp's 400;
- what the front door leaves to aiohttp (other paths, keep-alive requests after one, a head split
  over many writes, a head over its limit, a body, a protobuf query, an origin or admission
  refusal) is answered as before, a refusal logged and counted once;
- the client's first frame sent with the upgrade request is served.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from helpers.env import free_port
from helpers.raw_upgrade import REFUSED, WELL_FORMED, upgrade
from helpers.server import serving as serving_server

from rotary.server import front_door
from rotary.server.alt_svc import advertise_http3
from rotary.server.app import Server, build_server
from rotary.server.config.schema import ClientConfig, Config, HealthConfig, PrometheusConfig
from rotary.server.config.schema_transports import HttpAPIConfig, HTTPServerConfig, WebSocketConfig
from rotary.server.http_deadlines import CENTRIFUGO_HTTP_TIMEOUTS, HttpTimeouts

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")
WITHIN = 30.0
"""Seconds any answer may take on a loaded machine."""
PATH = "/connection/websocket"


@dataclass
class Taken:
    """Upgrades the front door served itself."""

    count: int = 0


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Taken:
    seen = Taken()
    serve_upgraded = front_door.serve_upgraded

    def counting(*args: Any) -> None:
        seen.count += 1
        serve_upgraded(*args)

    monkeypatch.setattr(front_door, "serve_upgraded", counting)
    return seen


def config(**client: Any) -> Config:
    return Config(
        http_server=HTTPServerConfig(address="127.0.0.1", port=free_port()),
        health=HealthConfig(enabled=True),
        http_api=HttpAPIConfig(key="k"),
        client=ClientConfig(allow_anonymous_connect_without_token=True, **client),
        prometheus=PrometheusConfig(enabled=True),
    )


@dataclass
class Serving:
    server: Server
    port: int
    answers: list[bytes] = field(default_factory=list)

    async def exchange(self, *writes: bytes, until: bytes = b"\r\n\r\n") -> bytes:
        """Writes each of ``writes`` (a loop pass apart), then reads to ``until`` and any body the
        head announces; Date left out."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            async with asyncio.timeout(WITHIN):
                for data in writes:
                    writer.write(data)
                    await writer.drain()
                    await asyncio.sleep(0)
                head = await reader.readuntil(until)
                size = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
                body = await reader.readexactly(int(size.group(1))) if size else b""
        finally:
            writer.close()
        return DATE.sub(b"\r\nDate: -\r\n", head) + body


@asynccontextmanager
async def serving(
    settings: Config, timeouts: HttpTimeouts = CENTRIFUGO_HTTP_TIMEOUTS
) -> AsyncIterator[Serving]:
    async with serving_server(settings, timeouts) as server:
        yield Serving(server, settings.http_server.port)


def without_front_door(settings: Config) -> Config:
    return replace(settings, prometheus=replace(settings.prometheus, instrument_http_handlers=True))


@pytest.fixture(params=[False, True], ids=["plain", "compression"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Serving, Serving]]:
    """The same server twice: with the front door, and with aiohttp taking every upgrade."""
    settings = replace(config(), websocket=WebSocketConfig(compression=request.param))
    other = replace(settings, http_server=replace(settings.http_server, port=free_port()))
    async with serving(settings) as door, serving(without_front_door(other)) as plain:
        yield door, plain


def request_for(name: str, table: dict[str, str]) -> bytes:
    return table[name].replace("{path}", PATH).encode()


async def same_answer(pair: tuple[Serving, Serving], request: bytes) -> bytes:
    """The front door's answer to ``request``, once checked equal to the plain server's."""
    door, plain = pair
    ours = await door.exchange(request)
    assert ours == await plain.exchange(request)
    return ours


@pytest.mark.parametrize("name", WELL_FORMED)
async def test_a_well_formed_upgrade_gets_the_same_answer_from_the_front_door(
    pair: tuple[Serving, Serving], taken: Taken, name: str
) -> None:
    ours = await same_answer(pair, request_for(name, WELL_FORMED))
    assert b" 101 Switching Protocols\r\n" in ours and b"Server:" not in ours
    # the front door takes plain HTTP/1.1 upgrades to a subprotocol it knows, aiohttp the rest
    assert taken.count == (0 if name in ("http/1.0", "unknown subprotocol") else 1)


@pytest.mark.parametrize("name", REFUSED)
async def test_a_malformed_upgrade_gets_aiohttps_400(
    pair: tuple[Serving, Serving], taken: Taken, name: str
) -> None:
    ours = await same_answer(pair, request_for(name, REFUSED))
    assert ours.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert taken.count == 0


def frame(text: str) -> bytes:
    """A masked text frame (mask of zeros) under 126 bytes."""
    payload = text.encode()
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload


async def test_a_first_frame_sent_with_the_upgrade_is_served(taken: Taken) -> None:
    async with serving(config()) as door:
        request = request_for("plain", WELL_FORMED) + frame('{"id":1,"connect":{}}')
        answer = await door.exchange(request, until=b'"pong":true}}')
    assert b" 101 Switching Protocols\r\n" in answer and b'{"id":1,"connect":{"client":' in answer
    assert taken.count == 1


async def test_a_head_split_over_writes_is_put_together(taken: Taken) -> None:
    async with serving(config()) as door:
        request = request_for("plain", WELL_FORMED)
        answer = await door.exchange(request[:5], request[5:40], request[40:-1], request[-1:])
    assert b" 101 Switching Protocols\r\n" in answer
    assert taken.count == 1


async def test_other_requests_reach_aiohttp_and_keep_alive(taken: Taken) -> None:
    async with serving(config()) as door:
        health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        api = b"POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\nContent-Length: 2\r\n\r\n{}"
        reader, writer = await asyncio.open_connection("127.0.0.1", door.port)
        async with asyncio.timeout(WITHIN):
            for request, body in ((health, b"{}"), (api, b'{"result":')):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n")
                size = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
                assert size is not None
                assert (await reader.readexactly(int(size.group(1)))).startswith(body)
            # an upgrade after a request on the same connection is aiohttp's too
            writer.write(request_for("plain", WELL_FORMED))
            assert b" 101 Switching Protocols\r\n" in await reader.readuntil(b"\r\n\r\n")
        writer.close()
        unrouted = await door.exchange(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        assert unrouted.startswith(b"HTTP/1.1 404 Not Found\r\n")
        assert unrouted.endswith(b"404 page not found\n")
    assert taken.count == 0


@pytest.mark.parametrize("padding", [front_door.HEAD_LIMIT, 4 * front_door.HEAD_LIMIT])
async def test_a_head_over_the_limit_gets_aiohttps_answer(taken: Taken, padding: int) -> None:
    long = upgrade("X-Padding: " + "a" * padding).replace("{path}", PATH).encode()
    async with serving(config()) as door, serving(without_front_door(config())) as plain:
        ours = await door.exchange(long)
        assert ours == await plain.exchange(long)
    assert taken.count == 0


async def test_a_head_left_to_aiohttp_keeps_its_deadline(taken: Taken) -> None:
    """Header lines past the front door's limit, the blank line never sent: aiohttp has the
    connection, and the header deadline started at the accept still ends it."""
    short = HttpTimeouts(read_header=0.2, read=0.2, idle=0.2)
    async with serving(config(), short) as door:
        reader, writer = await asyncio.open_connection("127.0.0.1", door.port)
        line = b"X-Padding: " + b"a" * 100 + b"\r\n"
        writer.write(b"GET /health HTTP/1.1\r\n" + line * (front_door.HEAD_LIMIT // len(line) + 1))
        async with asyncio.timeout(WITHIN):
            assert await reader.read() == b""
        writer.close()
    assert taken.count == 0


async def test_an_upgrade_left_to_aiohttp_outlives_the_header_deadline(taken: Taken) -> None:
    """A long upgrade head goes to aiohttp, whose middleware stops the deadline the front door
    started: the WebSocket still serves after it would have passed."""
    short = HttpTimeouts(read_header=0.2, read=0.2, idle=0.2)
    long = upgrade("X-Padding: " + "a" * front_door.HEAD_LIMIT).replace("{path}", PATH).encode()
    async with serving(config(), short) as door:
        reader, writer = await asyncio.open_connection("127.0.0.1", door.port)
        writer.write(long)
        async with asyncio.timeout(WITHIN):
            assert b" 101 Switching Protocols\r\n" in await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5 * short.read_header)
        writer.write(frame('{"id":1,"connect":{}}'))
        async with asyncio.timeout(WITHIN):
            assert b'{"id":1,"connect":{"client":' in await reader.readuntil(b'"pong":true}}')
        writer.close()
    assert taken.count == 0


async def test_a_protobuf_query_is_aiohttps_and_speaks_protobuf(taken: Taken) -> None:
    async with serving(config()) as door:
        plain = request_for("plain", WELL_FORMED)
        request = plain.replace(PATH.encode(), PATH.encode() + b"?cf_protocol=protobuf")
        connect = bytes((0x08, 0x01, 0x22, 0x00))  # Command{id: 1, connect: {}}, varint-delimited
        masked = bytes((0x82, 0x80 | 5)) + b"\0\0\0\0" + bytes((4,)) + connect
        answer = await door.exchange(request + masked, until=b"\x82")
    assert b" 101 Switching Protocols\r\n" in answer
    assert answer.endswith(b"\r\n\r\n\x82")  # the connect reply comes in a binary frame
    assert taken.count == 0


async def test_an_origin_refusal_is_aiohttps_403_logged_once(
    taken: Taken, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(config(allowed_origins=("https://good.example",))) as door:
        good = request_for("plain", WELL_FORMED).replace(
            b"\r\n\r\n", b"\r\nOrigin: https://good.example\r\n\r\n"
        )
        assert b" 101 Switching Protocols\r\n" in await door.exchange(good)
        assert taken.count == 1
        bad = good.replace(b"good.example", b"evil.example")
        with caplog.at_level(logging.INFO, logger="rotary.origins"):
            answer = await door.exchange(bad)
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert taken.count == 1
    assert [r.getMessage() for r in caplog.records if "not authorized" in r.getMessage()] == [
        "request Origin is not authorized: https://evil.example (allowed_origins ['https://good.example'])"
    ]


async def test_a_connection_limit_refusal_is_aiohttps_503_counted_once(taken: Taken) -> None:
    async with serving(config(connection_limit=1)) as door:
        reader, writer = await asyncio.open_connection("127.0.0.1", door.port)
        writer.write(request_for("plain", WELL_FORMED) + frame('{"id":1,"connect":{}}'))
        async with asyncio.timeout(WITHIN):
            await reader.readuntil(b'"pong":true}}')
        answer = await door.exchange(request_for("plain", WELL_FORMED))
        metrics = door.server.node.metrics
        assert metrics is not None
        counted = metrics.connection_limit
        writer.close()
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert counted == 1
    assert taken.count == 1


def test_the_front_door_steps_aside_for_what_aiohttp_adds() -> None:
    """Metrics of HTTP handlers (a middleware) and Alt-Svc (a response signal) need aiohttp."""
    server = build_server(config())
    assert front_door.serves_alone(server.external, server.deadlines)
    server = build_server(without_front_door(config()))
    assert not front_door.serves_alone(server.external, server.deadlines)
    server = build_server(config())
    advertise_http3(server.external, 8443)
    assert not front_door.serves_alone(server.external, server.deadlines)
