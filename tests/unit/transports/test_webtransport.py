"""WebTransport over HTTP/3 with rotary's own aioquic client: the client protocol on one
bidirectional stream, JSON and Protobuf, server disconnects, and bad input that leaves the server
healthy (https://centrifugal.dev/docs/transports/webtransport)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
from helpers.certs import self_signed
from helpers.env import free_port
from helpers.webtransport import (
    WebTransportServer,
    parse_webtransport_config,
    webtransport_config,
    webtransport_server,
    wt_connect,
)

from rotary.protocol import codes
from rotary.server.app import StartError, build_server, serve

PROTOCOLS = ["json", "protobuf"]


def _path(protocol: str) -> str:
    return "/connection/webtransport" + ("?cf_protocol=protobuf" if protocol == "protobuf" else "")


def _data(protocol: str, pub: dict[str, Any]) -> Any:
    return orjson.loads(pub["data"]) if protocol == "protobuf" else pub["data"]


async def _publish(server: WebTransportServer, channel: str, data: Any) -> None:
    status, body = await server.rotary.call("publish", {"channel": channel, "data": data})
    assert status == 200 and "error" not in body, body


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_connect_subscribe_receive_and_server_disconnect(tmp_path: Path, protocol: str) -> None:
    port = free_port()
    async with (
        webtransport_server(tmp_path, port, webtransport_config(port, self_signed())) as server,
        wt_connect(port) as connection,
    ):
        session = await connection.session(_path(protocol))
        reply = await session.connect("alice")
        assert session.id, reply
        reply = await session.command(subscribe={"channel": "news"})
        assert "error" not in reply, reply
        await _publish(server, "news", {"text": "hi"})
        push = await session.push("pub")
        assert push["channel"] == "news"
        assert _data(protocol, push["pub"]) == {"text": "hi"}

        status, body = await server.rotary.call(
            "disconnect", {"user": "alice", "disconnect": {"code": 4500, "reason": "bye"}}
        )
        assert status == 200, body
        disconnect = (await session.push("disconnect"))["disconnect"]
        assert (disconnect["code"], disconnect["reason"]) == (4500, "bye")
        await session.stream_end()
        assert await session.session_close() == (4500, "bye")
        assert not server.rotary.node.hub.clients


async def test_shutdown_says_3001_and_ends_the_session(tmp_path: Path) -> None:
    port = free_port()
    async with (
        webtransport_server(tmp_path, port, webtransport_config(port, self_signed())) as server,
        wt_connect(port) as connection,
    ):
        session = await connection.session()
        await session.connect("alice")
        shutdown = asyncio.create_task(server.rotary.node.shutdown(timeout=1.0))
        disconnect = (await session.push("disconnect"))["disconnect"]
        assert disconnect["code"] == codes.DISCONNECT_SHUTDOWN.code
        assert await session.session_close() == (codes.DISCONNECT_SHUTDOWN.code, "shutdown")
        await shutdown
        status, _ = await connection.request("/connection/webtransport")
        assert status == 503  # a closing node admits no one


async def test_malformed_connects_get_http_errors(tmp_path: Path) -> None:
    port = free_port()
    config = webtransport_config(port, self_signed(), client={"allowed_origins": ["https://good.example"]})
    async with webtransport_server(tmp_path, port, config) as server, wt_connect(port) as connection:
        assert (await connection.request("/connection/other"))[0] == 404
        assert (await connection.request("/connection/webtransport", protocol=None))[0] == 400
        assert (await connection.request("/connection/webtransport", protocol=b"websocket"))[0] == 400
        assert (await connection.request("/connection/webtransport", method=b"GET", protocol=None))[0] == 400
        assert (await connection.request("/connection/webtransport", origin="https://evil.example"))[0] == 400
        status, stream_id = await connection.request("/connection/other", method=b"POST", protocol=None)
        assert status == 404
        connection.client.h3.send_headers(
            stream_id, [(b"x-trailer", b"1")], end_stream=True
        )  # after our answer
        connection.client.transmit()
        session = await connection.session(origin="https://good.example")
        assert (await session.connect("alice")).get("connect"), "a good origin connects"
        assert len(server.rotary.node.hub.clients) == 1


async def test_connection_limit_answers_503(tmp_path: Path) -> None:
    port = free_port()
    config = webtransport_config(port, self_signed(), client={"connection_limit": 1})
    async with webtransport_server(tmp_path, port, config), wt_connect(port) as connection:
        session = await connection.session()
        await session.connect("alice")
        assert (await connection.request("/connection/webtransport"))[0] == 503


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_oversized_command_closes_only_that_session(tmp_path: Path, protocol: str) -> None:
    port = free_port()
    config = webtransport_config(port, self_signed(), webtransport={"message_size_limit": 1024})
    async with webtransport_server(tmp_path, port, config) as server, wt_connect(port) as connection:
        healthy = await connection.session(_path(protocol))
        await healthy.connect("bob")
        await healthy.command(subscribe={"channel": "news"})
        session = await connection.session(_path(protocol))
        await session.connect("alice")
        if protocol == "json":
            session.send_raw(b'{"id": 9, "rpc": {"data": "' + b"x" * 2000)  # no newline yet: still too long
        else:
            session.send_raw(b"\xd0\x0f" + b"x" * 10)  # announces 2000 bytes
        assert await session.session_close() == (codes.DISCONNECT_CONNECTION_CLOSED.code, "connection closed")
        await _publish(server, "news", {"n": 1})
        assert _data(protocol, (await healthy.push("pub"))["pub"]) == {"n": 1}


async def test_a_client_that_never_reads_is_dropped_as_slow(tmp_path: Path) -> None:
    """The frozen client's QUIC connection stops taking packets: nothing it is sent is acknowledged,
    so the bytes held for it grow past client.queue_max_size and it is closed with 3008; a healthy
    subscriber of the same channel gets every publication."""
    port = free_port()
    config = webtransport_config(port, self_signed(), client={"queue_max_size": 65536})
    async with webtransport_server(tmp_path, port, config) as server:
        async with wt_connect(port) as frozen_connection, wt_connect(port) as connection:
            frozen = await frozen_connection.session()
            await frozen.connect("frozen")
            await frozen.command(subscribe={"channel": "firehose"})
            healthy = await connection.session()
            await healthy.connect("healthy")
            await healthy.command(subscribe={"channel": "firehose"})
            frozen_connection.client.datagram_received = lambda data, addr: None  # type: ignore[method-assign]
            endpoint = server.rotary.server.http3
            assert endpoint is not None
            for n in range(40):
                await _publish(server, "firehose", {"n": n, "blob": "x" * 10_000})
                assert _data("json", (await healthy.push("pub"))["pub"])["n"] == n
            async with asyncio.timeout(10):
                while len(server.rotary.node.hub.clients) != 1 or len(endpoint.sessions) != 1:
                    await asyncio.sleep(0.05)
            assert healthy.id in server.rotary.node.hub.clients


async def test_a_session_without_a_stream_is_ended(tmp_path: Path) -> None:
    port = free_port()
    async with webtransport_server(tmp_path, port, webtransport_config(port, self_signed())) as server:
        endpoint = server.rotary.server.http3
        assert endpoint is not None
        async with wt_connect(port) as connection:
            session = await connection.session()
            assert len(endpoint.sessions) == 1
            for live in list(endpoint.sessions):
                live._not_accepted()  # the accept timer firing, without waiting 10 s
            assert await session.session_close() == (3000, "connection closed")
            assert not endpoint.sessions


async def test_serve_listens_on_udp_and_says_3001_at_shutdown(tmp_path: Path) -> None:
    """The whole ``serve``: TCP and the HTTP/3 listener on the same port number, and at shutdown each
    WebTransport session gets the 3001 push and its session close before the listener goes."""
    port = free_port()
    config = parse_webtransport_config(tmp_path, webtransport_config(port, self_signed()))
    stop = asyncio.Event()
    running = asyncio.create_task(serve(build_server(config), stop))
    async with asyncio.timeout(10):
        while True:
            try:
                async with wt_connect(port) as probe:
                    await probe.request("/nothing")
                break
            except (ConnectionError, TimeoutError):
                await asyncio.sleep(0.05)
    async with wt_connect(port) as connection:
        session = await connection.session()
        await session.connect("alice")
        stop.set()
        disconnect = (await session.push("disconnect"))["disconnect"]
        assert (disconnect["code"], disconnect["reason"]) == (3001, "shutdown")
        assert await session.session_close() == (3001, "shutdown")
    async with asyncio.timeout(10):
        await running


async def test_a_taken_udp_port_refuses_the_start_naming_the_key(tmp_path: Path) -> None:
    port = free_port()
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", port))
    try:
        config = parse_webtransport_config(tmp_path, webtransport_config(port, self_signed()))
        with pytest.raises(
            StartError, match=rf"^http_server.http3.enabled: cannot listen on udp 127.0.0.1:{port}"
        ):
            await serve(build_server(config), asyncio.Event())
    finally:
        taken.close()


async def test_peer_closing_the_session_or_sending_on_more_streams(tmp_path: Path) -> None:
    """Streams beyond the first are ignored (Centrifugo accepts one); the peer's
    CLOSE_WEBTRANSPORT_SESSION ends the server's client."""
    port = free_port()
    async with (
        webtransport_server(tmp_path, port, webtransport_config(port, self_signed())) as server,
        wt_connect(port) as connection,
    ):
        session = await connection.session()
        await session.connect("alice")
        extra = connection.client.h3.create_webtransport_stream(session.session_id, is_unidirectional=False)
        connection.client.quic.send_stream_data(extra, b"junk that is not a command\n")
        assert "error" not in await session.command(subscribe={"channel": "news"})
        assert len(server.rotary.node.hub.clients) == 1
        capsule = b"\x68\x43\x04" + (0).to_bytes(4, "big")
        connection.client.h3.send_data(session.session_id, capsule, end_stream=True)
        connection.client.transmit()
        async with asyncio.timeout(5):
            while server.rotary.node.hub.clients:
                await asyncio.sleep(0.02)


async def test_pings_go_out_and_a_missing_pong_closes_with_3012(tmp_path: Path) -> None:
    """The Client's timers work over WebTransport as over WebSocket: a ping each ping_interval,
    and 3012 "no pong" when none comes back within pong_timeout."""
    port = free_port()
    config = webtransport_config(port, self_signed(), client={"ping_interval": "1s", "pong_timeout": "500ms"})
    async with webtransport_server(tmp_path, port, config), wt_connect(port) as connection:
        session = await connection.session()
        session.answer_pings = False
        await session.connect("alice")
        disconnect = (await session.push("disconnect"))["disconnect"]
        assert (disconnect["code"], disconnect["reason"]) == (3012, "no pong")
        assert await session.session_close() == (3012, "no pong")


async def test_a_lost_connection_ends_its_sessions_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    async with webtransport_server(tmp_path, port, webtransport_config(port, self_signed())) as server:
        endpoint = server.rotary.server.http3
        assert endpoint is not None
        async with wt_connect(port) as connection:
            session = await connection.session()
            await session.connect("alice")
            await connection.session()  # a second session, never given a stream
        async with asyncio.timeout(5):
            while server.rotary.node.hub.clients or endpoint.sessions:
                await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
