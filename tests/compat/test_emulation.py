"""HTTP streaming, SSE and the emulation endpoint at the HTTP level: what a client sees, bad input,
the limits and timers every transport obeys, and the server staying healthy throughout.

Status codes follow Centrifugo v6.9.1 as observed (413 for a body over ``max_request_body_size``,
405 for another method, 400 for SSE without ``cf_connect`` or an unreadable emulation request, 404
for an emulation request naming an unknown node, 204 for one naming a session its node no longer
has); a malformed connect gets a 200 stream whose only message is the disconnect push 3501. A
disallowed Origin gets no CORS headers, so browsers refuse the response (Centrifugo's middleware).
See https://centrifugal.dev/docs/transports/http_stream and https://centrifugal.dev/docs/transports/sse.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import DEFAULT_CONFIG, RotaryServer, merged, running_rotary
from emulated import JSON, EmulatedClient
from test_slow_client import RECEIVE_BUFFER, SOCKET_TIMEOUT, TCP_ESTABLISHED

pytestmark = pytest.mark.compat

GOOD_ORIGIN = "http://good.example"
EMULATION: dict[str, Any] = {
    "client": {"allowed_origins": [GOOD_ORIGIN]},
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
}
TRANSPORTS = ["http_stream", "sse"]
LIMIT = 65536
"""The default max_request_body_size of http_stream, sse and emulation."""

StartRotary = Callable[[dict[str, Any]], RotaryServer]


@pytest.fixture(scope="module")
def rotary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotaryServer]:
    with running_rotary(tmp_path_factory.mktemp("rotary"), merged(DEFAULT_CONFIG, EMULATION)) as server:
        yield server


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def channel() -> str:
    return "chat:" + os.urandom(6).hex()


async def open_client(server: RotaryServer, transport: str, user: str, make_token: Any) -> EmulatedClient:
    return await EmulatedClient.open(server.http_url, transport, {"token": make_token({"sub": user})})


async def status_of(method: str, url: str, **options: Any) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **options) as response:
        await response.read()
        return response.status, dict(response.headers)


async def assert_healthy(server: RotaryServer, make_token: Any) -> None:
    """A new connection still works end to end: connect, subscribe, a publication arrives."""
    client = await open_client(server, "http_stream", "healthy", make_token)
    try:
        name = channel()
        assert "subscribe" in await client.command(subscribe={"channel": name})
        await server.api("publish", {"channel": name, "data": {"ok": True}})
        push = await client.until(lambda m: "pub" in m.get("push", {}), "the publication")
        assert push["push"]["pub"]["data"] == {"ok": True}
    finally:
        await client.close()


async def test_commands_go_through_emulation_and_replies_and_pushes_come_on_the_stream(
    rotary: RotaryServer, transport: str, make_token: Any
) -> None:
    client = await open_client(rotary, transport, "ann", make_token)
    try:
        name = channel()
        assert client.session_id and client.node_id
        subscribed = await client.command(subscribe={"channel": name})
        assert subscribed["subscribe"]["recoverable"]
        await rotary.api("publish", {"channel": name, "data": {"n": 1}})
        push = await client.until(lambda m: "pub" in m.get("push", {}), "the publication")
        assert push["push"]["channel"] == name
        assert (push["push"]["pub"]["data"], push["push"]["pub"]["offset"]) == ({"n": 1}, 1)
        assert (await client.command(publish={"channel": name, "data": {"n": 2}})) == {
            "id": client._next_id,
            "publish": {},
        }
        history = await client.command(history={"channel": name, "limit": 10})
        assert [p["data"] for p in history["history"]["publications"]] == [{"n": 1}, {"n": 2}]
    finally:
        await client.close()


async def test_the_stream_ends_with_a_disconnect_push(rotary: RotaryServer, make_token: Any) -> None:
    client = await open_client(rotary, "http_stream", "kicked", make_token)
    try:
        await rotary.api("disconnect", {"user": "kicked", "disconnect": {"code": 4501, "reason": "bye"}})
        messages = await client.end()
        assert messages[-1] == {"push": {"disconnect": {"code": 4501, "reason": "bye"}}}
        # The session is gone with its stream: commands for it are accepted and dropped, as
        # Centrifugo answers them.
        assert await client.send(presence={"channel": channel()}) == 204
    finally:
        await client.close()


async def test_oversized_bodies_are_refused_with_413(rotary: RotaryServer, make_token: Any) -> None:
    too_large = b"x" * (LIMIT + 1)
    for path in ("/connection/http_stream", "/connection/sse", "/emulation"):
        status, _ = await status_of("POST", rotary.http_url + path, data=too_large)
        assert status == 413, path
    # Exactly at the limit the body is read (and found not to be an emulation request).
    status, _ = await status_of("POST", rotary.http_url + "/emulation", data=b"x" * LIMIT, headers=JSON)
    assert status == 400
    await assert_healthy(rotary, make_token)


async def test_malformed_connect_requests(rotary: RotaryServer, make_token: Any) -> None:
    bad_request = {"push": {"disconnect": {"code": 3501, "reason": "bad request"}}}
    async with aiohttp.ClientSession() as session:
        for body in (b"nonsense", b"", b'{"id":1,"connect":"not an object"}', b"\xff\xfe"):
            async with session.post(
                rotary.http_url + "/connection/http_stream", data=body, headers=JSON
            ) as response:
                assert response.status == 200
                assert orjson.loads(await response.read()) == bad_request, body
        async with session.get(rotary.http_url + "/connection/sse", params={"cf_connect": "{{"}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
            assert await response.read() == b"\r\ndata: " + orjson.dumps(bad_request) + b"\n\n"
    assert (await status_of("GET", rotary.http_url + "/connection/sse"))[0] == 400
    assert (await status_of("GET", rotary.http_url + "/connection/http_stream"))[0] == 405
    assert (await status_of("PUT", rotary.http_url + "/connection/sse"))[0] == 405
    await assert_healthy(rotary, make_token)


async def test_bad_emulation_requests(rotary: RotaryServer, make_token: Any) -> None:
    url = rotary.http_url + "/emulation"
    client = await open_client(rotary, "http_stream", "ann", make_token)
    try:
        node = client.node_id
        assert (await status_of("POST", url, json={"node": "nowhere", "session": "x", "data": "{}"}))[
            0
        ] == 404
        assert (await status_of("POST", url, json={"session": client.session_id, "data": "{}"}))[0] == 404
        assert (await status_of("POST", url, json={"node": node, "session": "gone", "data": "{}"}))[0] == 204
        assert (await status_of("POST", url, data=b"nonsense", headers=JSON))[0] == 400
        assert (await status_of("POST", url, data=b"[1]", headers=JSON))[0] == 400
        assert (await status_of("POST", url, json={"node": 5}))[0] == 400
        assert (await status_of("GET", url))[0] == 405
        assert (await status_of("POST", url, data=b"\x0a\x05", headers=PROTOBUF))[0] == 400
        # Data a JSON client cannot mean is dropped at the session's node (Centrifugo's 204), and the
        # connection goes on.
        body = {"node": node, "session": client.session_id, "data": 123}
        assert (await status_of("POST", url, json=body))[0] == 204
        assert "subscribe" in await client.command(subscribe={"channel": channel()})
        # Commands that do not parse inside valid data end the connection with 3501, as over WebSocket.
        body = {"node": node, "session": client.session_id, "data": "nonsense"}
        assert (await status_of("POST", url, json=body))[0] == 204
        messages = await client.end()
        assert messages[-1] == {"push": {"disconnect": {"code": 3501, "reason": "bad request"}}}
    finally:
        await client.close()
    await assert_healthy(rotary, make_token)


PROTOBUF = {"Content-Type": "application/octet-stream"}


async def test_cors_follows_allowed_origins(rotary: RotaryServer) -> None:
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    for path in ("/connection/http_stream", "/emulation"):
        status, headers = await status_of(
            "OPTIONS", rotary.http_url + path, headers={"Origin": GOOD_ORIGIN, **asked}
        )
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == GOOD_ORIGIN
        assert headers["Access-Control-Allow-Credentials"] == "true"
        assert headers["Access-Control-Allow-Headers"] == "content-type"
        assert headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
        assert headers["Access-Control-Max-Age"] == "300"
        status, headers = await status_of(
            "OPTIONS", rotary.http_url + path, headers={"Origin": "http://evil.example", **asked}
        )
        assert status == 204
        assert "Access-Control-Allow-Origin" not in headers
        assert "Access-Control-Allow-Credentials" not in headers
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            rotary.http_url + "/connection/http_stream",
            data=b'{"id":1,"connect":{}}',
            headers={"Origin": "http://evil.example", **JSON},
        ) as response,
    ):
        # Centrifugo serves the stream; without CORS headers a browser keeps it from the page.
        assert "Access-Control-Allow-Origin" not in response.headers
        assert response.status == 200


async def test_pings_and_pongs_go_over_the_stream_and_emulation(
    start_rotary: StartRotary, transport: str, make_token: Any
) -> None:
    server = start_rotary({**EMULATION, "client": {"ping_interval": "1s", "pong_timeout": "500ms"}})
    client = await open_client(server, transport, "pinged", make_token)
    try:
        pings = 0
        while pings < 2:
            await client.until(lambda m: m == {}, "a ping")
            client.messages.remove({})
            pings += 1
            session = client._session
            body = {"node": client.node_id, "session": client.session_id, "data": "{}"}
            async with session.post(client.emulation_url, json=body) as response:
                assert response.status == 204
        messages = await client.end()  # no more pongs
        assert messages[-1] == {"push": {"disconnect": {"code": 3012, "reason": "no pong"}}}
    finally:
        await client.close()


async def test_graceful_shutdown_ends_every_stream_with_3001(
    start_rotary: StartRotary, transport: str, make_token: Any
) -> None:
    server = start_rotary(EMULATION)
    client = await open_client(server, transport, "ann", make_token)
    try:
        await asyncio.to_thread(server.process.stop)
        assert server.process.process.returncode == 0
        messages = await client.end()
        assert messages[-1] == {"push": {"disconnect": {"code": 3001, "reason": "shutdown"}}}
    finally:
        await client.close()


async def test_connection_limit_refuses_with_503(start_rotary: StartRotary, make_token: Any) -> None:
    server = start_rotary({**EMULATION, "client": {"connection_limit": 1}})
    first = await open_client(server, "http_stream", "ann", make_token)
    try:
        for path in ("/connection/http_stream", "/connection/sse"):
            connect = b'{"id":1,"connect":{}}'
            status, _ = await status_of(
                "GET" if "sse" in path else "POST",
                server.http_url + path,
                **({"params": {"cf_connect": connect.decode()}} if "sse" in path else {"data": connect}),
            )
            assert status == 503, path
    finally:
        await first.close()


def _dropped_by_server(sock: socket.socket, server_port: int) -> bool:
    """Whether the server closed its end (asked of the kernel: the peer does not read; see
    test_slow_client.py)."""
    client_port = sock.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return int(state, 16) != TCP_ESTABLISHED
    return True


async def test_a_client_that_never_reads_is_dropped_as_slow(
    start_rotary: StartRotary, make_token: Any
) -> None:
    server = start_rotary({**EMULATION, "client": {"queue_max_size": 1 << 20}})
    name = channel()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.settimeout(SOCKET_TIMEOUT)
    sock.connect(("127.0.0.1", server.port))
    reader = await open_client(server, "http_stream", "reader", make_token)
    try:
        body = orjson.dumps({"id": 1, "connect": {"token": make_token({"sub": "slow"})}})
        head = (
            f"POST /connection/http_stream HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        received = b""
        while b"}}\n" not in received:
            received += await asyncio.to_thread(sock.recv, 65536)
        reply = orjson.loads(received[received.index(b'{"id":1') :].split(b"\n", 1)[0])
        command = {"id": 2, "subscribe": {"channel": name}}
        emulation = {
            "node": reply["connect"]["node"],
            "session": reply["connect"]["session"],
            "data": orjson.dumps(command).decode(),
        }
        assert (await status_of("POST", server.http_url + "/emulation", json=emulation))[0] == 204
        assert "subscribe" in await reader.command(subscribe={"channel": name})
        blob = "x" * 100_000
        for number in range(300):  # 30 MB, far more than the 1 MiB queue and the socket buffers
            await server.api("publish", {"channel": name, "data": {"n": number, "blob": blob}})
            await reader.until(lambda m: "pub" in m.get("push", {}), f"publication {number}")
            reader.messages.clear()
            if _dropped_by_server(sock, server.port):
                break
        else:
            raise AssertionError("the client that never reads was not dropped")
        assert "code 3008" in server.log()
    finally:
        sock.close()
        await reader.close()
    await assert_healthy(server, make_token)


async def test_one_publication_reaches_subscribers_of_every_transport(
    rotary: RotaryServer, make_token: Any
) -> None:
    """WebSocket, HTTP streaming and SSE subscribers of one channel share the fan-out."""
    name = channel()
    streams = [await open_client(rotary, transport, "ann", make_token) for transport in TRANSPORTS * 2]
    async with aiohttp.ClientSession() as session, session.ws_connect(rotary.ws_url) as ws:
        try:
            await ws.send_str(
                orjson.dumps({"id": 1, "connect": {"token": make_token({"sub": "bob"})}}).decode()
            )
            await ws.send_str(orjson.dumps({"id": 2, "subscribe": {"channel": name}}).decode())
            for stream in streams:
                assert "subscribe" in await stream.command(subscribe={"channel": name})
            async with asyncio.timeout(10):
                while '"id":2' not in (await ws.receive_str()):
                    pass
            await rotary.api("publish", {"channel": name, "data": {"to": "all"}})
            for stream in streams:
                push = await stream.until(lambda m: "pub" in m.get("push", {}), "the publication")
                assert push["push"]["pub"]["data"] == {"to": "all"}
            async with asyncio.timeout(10):
                while '"pub"' not in (text := await ws.receive_str()):
                    pass
            assert orjson.loads(text.splitlines()[-1])["push"]["pub"]["data"] == {"to": "all"}
        finally:
            for stream in streams:
                await stream.close()


async def test_a_client_that_goes_away_is_forgotten(
    rotary: RotaryServer, transport: str, make_token: Any
) -> None:
    """The stream's peer closes its socket: the connection ends, and leaves presence."""
    name = channel()
    client = await open_client(rotary, transport, "leaver", make_token)
    assert "subscribe" in await client.command(subscribe={"channel": name})
    presence = await rotary.api("presence", {"channel": name})
    assert [info["user"] for info in presence["result"]["presence"].values()] == ["leaver"]
    await client.close()
    async with asyncio.timeout(10):
        while (await rotary.api("presence", {"channel": name}))["result"]["presence"]:
            await asyncio.sleep(0.1)


async def test_handler_prefixes_and_body_limits_come_from_the_config(
    start_rotary: StartRotary, make_token: Any
) -> None:
    server = start_rotary(
        {
            "http_stream": {"enabled": True, "handler_prefix": "/rt/stream/", "max_request_body_size": 300},
            "sse": {"enabled": True, "handler_prefix": "/rt/events", "max_request_body_size": 200},
            "emulation": {"handler_prefix": "/rt/commands", "max_request_body_size": 250},
        }
    )
    base = server.http_url
    for path, limit in (("/rt/stream", 300), ("/rt/events", 200), ("/rt/commands", 250)):
        assert (await status_of("POST", base + path, data=b" " * (limit + 1)))[0] == 413, path
    assert (await status_of("POST", base + "/connection/http_stream", data=b"{}"))[0] == 404
    assert (await status_of("POST", base + "/emulation", data=b"{}"))[0] == 404
    connect = {"id": 1, "connect": {"token": make_token({"sub": "ann"})}}
    async with aiohttp.ClientSession() as session:
        async with session.post(base + "/rt/stream", data=orjson.dumps(connect), headers=JSON) as response:
            reply = orjson.loads(await response.content.readline())
        command = {"id": 2, "subscribe": {"channel": channel()}}
        body = {"node": reply["connect"]["node"], "session": reply["connect"]["session"]}
        async with session.post(
            base + "/rt/commands", json={**body, "data": orjson.dumps(command).decode()}
        ) as r:
            assert r.status == 204
        async with session.get(
            base + "/rt/events", params={"cf_connect": orjson.dumps(connect).decode()}
        ) as r:
            assert r.status == 200
            assert (await r.content.readline()).strip() == b""  # the preamble
            assert "connect" in orjson.loads((await r.content.readline())[len(b"data: ") :])
