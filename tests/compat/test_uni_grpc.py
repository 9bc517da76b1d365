"""Unidirectional GRPC with a plain grpc.aio client calling CentrifugoUniStream.Consume.

The client streams Push messages: connect first, then publications of its token channels and of a
channel the API subscribes it to, and the disconnect push before the stream ends (pings, empty
Pushes every 25 s, are left to the unit tests of the session)
(https://centrifugal.dev/docs/transports/uni_grpc).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from conftest import DEFAULT_CONFIG, RotaryServer, merged, running_rotary, sign_token
from grpc import aio
from helpers.certs import TestCA
from helpers.env import free_port

from rotary.protocol._pb import unistream_pb2

pytestmark = pytest.mark.compat

WAIT = 10.0
CONSUME = "/centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume"


@pytest.fixture(scope="module")
def grpc_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def uni(tmp_path_factory: pytest.TempPathFactory, grpc_port: int) -> Iterator[RotaryServer]:
    config = merged(
        DEFAULT_CONFIG,
        {
            "uni_grpc": {"enabled": True, "address": "127.0.0.1", "port": grpc_port},
            "client": {"ping_interval": "1s", "pong_timeout": "500ms"},
        },
    )
    with running_rotary(tmp_path_factory.mktemp("rotary"), config) as server:
        yield server


@pytest.fixture
async def channel(grpc_port: int) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
        await asyncio.wait_for(ch.channel_ready(), WAIT)
        yield ch


def consume(ch: aio.Channel, request: unistream_pb2.ConnectRequest) -> Any:
    call = ch.unary_stream(
        CONSUME,
        request_serializer=unistream_pb2.ConnectRequest.SerializeToString,
        response_deserializer=unistream_pb2.Push.FromString,
    )
    return call(request)


async def until(stream: Any, kind: str) -> unistream_pb2.Push:
    async with asyncio.timeout(WAIT):
        while True:
            push: unistream_pb2.Push = await stream.read()
            assert push is not aio.EOF, f"stream ended before a {kind} push"
            if push.HasField(kind):  # type: ignore[arg-type]
                return push


async def test_connect_publication_ping_subscribe_and_disconnect(
    uni: RotaryServer, channel: aio.Channel
) -> None:
    news = "chat:" + uuid.uuid4().hex[:12]
    extra = "chat:" + uuid.uuid4().hex[:12]
    token = sign_token({"sub": "grpc-user", "channels": [news]})
    stream = consume(channel, unistream_pb2.ConnectRequest(token=token))
    connected = (await until(stream, "connect")).connect
    # Centrifugo pings uni_grpc clients every 25 s, whatever client.ping_interval says
    assert connected.client and connected.session and connected.ping == 25 and not connected.pong
    assert list(connected.subs) == [news]
    await uni.api("publish", {"channel": news, "data": {"n": 1}})
    pub = await until(stream, "pub")
    assert pub.channel == news and orjson.loads(pub.pub.data) == {"n": 1} and pub.pub.offset == 1
    await uni.api("subscribe", {"user": "grpc-user", "channel": extra})
    assert (await until(stream, "subscribe")).channel == extra
    await uni.api("disconnect", {"user": "grpc-user"})
    disconnect = (await until(stream, "disconnect")).disconnect
    assert (disconnect.code, disconnect.reason) == (3503, "force disconnect")
    assert await stream.read() is aio.EOF
    assert await stream.code() is grpc.StatusCode.OK


async def test_invalid_token_gets_disconnect_3500(uni: RotaryServer, channel: aio.Channel) -> None:
    stream = consume(channel, unistream_pb2.ConnectRequest(token="garbage"))
    disconnect = (await until(stream, "disconnect")).disconnect
    assert (disconnect.code, disconnect.reason) == (3500, "invalid token")
    assert await stream.read() is aio.EOF


async def test_cancelled_stream_ends_the_session(uni: RotaryServer, channel: aio.Channel) -> None:
    user = "gone-" + uuid.uuid4().hex[:6]
    stream = consume(channel, unistream_pb2.ConnectRequest(token=sign_token({"sub": user})))
    await until(stream, "connect")
    stream.cancel()
    async with asyncio.timeout(WAIT):
        while True:
            info = await uni.api("info", {})
            clients = sum(node.get("num_clients", 0) for node in info["result"]["nodes"])
            if clients == 0:
                break
            await asyncio.sleep(0.05)


def uni_grpc_config(port: int, tls: dict[str, Any]) -> dict[str, Any]:
    return merged(
        DEFAULT_CONFIG, {"uni_grpc": {"enabled": True, "address": "127.0.0.1", "port": port, "tls": tls}}
    )


async def test_tls_is_served_when_asked_for(tmp_path: Path) -> None:
    ca = TestCA()
    server = ca.issue("127.0.0.1")
    cert_path, _ = server.write(tmp_path, "server")
    port = free_port()
    tls = {"enabled": True, "cert_pem": str(cert_path), "key_pem": server.key_pem.decode()}
    with running_rotary(tmp_path / "rotary", uni_grpc_config(port, tls)):
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem)
        async with aio.secure_channel(f"127.0.0.1:{port}", credentials) as ch:
            await asyncio.wait_for(ch.channel_ready(), WAIT)
            stream = consume(ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "tls-user"})))
            assert (await until(stream, "connect")).connect.client
            stream.cancel()
        async with aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            plain = consume(ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "plain"})))
            with pytest.raises(aio.AioRpcError):
                await asyncio.wait_for(plain.read(), WAIT)


async def test_mutual_tls_takes_a_client_certificate_of_the_ca_only(tmp_path: Path) -> None:
    """``uni_grpc.tls.client_ca_pem``: a client certificate the CA signed gets the stream; none, or
    one of another CA, is refused in the handshake (https://centrifugal.dev/docs/transports/uni_grpc)."""
    ca, stranger = TestCA(), TestCA("another CA")
    server = ca.issue("127.0.0.1")
    port = free_port()
    tls = {
        "enabled": True,
        "cert_pem": server.cert_pem.decode(),
        "key_pem": server.key_pem.decode(),
        "client_ca_pem": ca.cert_pem.decode(),
    }
    with running_rotary(tmp_path / "rotary", uni_grpc_config(port, tls)):
        client = ca.issue("uni client", client=True)
        trusted = grpc.ssl_channel_credentials(ca.cert_pem, client.key_pem, client.cert_pem)
        async with aio.secure_channel(f"127.0.0.1:{port}", trusted) as ch:
            stream = consume(ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "mtls-user"})))
            assert (await until(stream, "connect")).connect.client
            stream.cancel()
        foreign = stranger.issue("foreign client", client=True)
        for credentials in (
            grpc.ssl_channel_credentials(root_certificates=ca.cert_pem),
            grpc.ssl_channel_credentials(ca.cert_pem, foreign.key_pem, foreign.cert_pem),
        ):
            async with aio.secure_channel(f"127.0.0.1:{port}", credentials) as ch:
                refused = consume(ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "no-cert"})))
                with pytest.raises(aio.AioRpcError) as caught:
                    await asyncio.wait_for(refused.read(), WAIT)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_that_never_reads_is_closed_as_slow(tmp_path: Path) -> None:
    port = free_port()
    config = merged(
        DEFAULT_CONFIG,
        {
            "uni_grpc": {"enabled": True, "address": "127.0.0.1", "port": port},
            "client": {"queue_max_size": 65536},
        },
    )
    news = "chat:" + uuid.uuid4().hex[:12]
    with running_rotary(tmp_path / "rotary", config) as server:
        async with (
            aio.insecure_channel(f"127.0.0.1:{port}") as slow_ch,
            aio.insecure_channel(f"127.0.0.1:{port}") as ch,
        ):
            slow = consume(
                slow_ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "slow", "channels": [news]}))
            )
            await until(slow, "connect")  # then never reads again
            reader = consume(
                ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "reader", "channels": [news]}))
            )
            await until(reader, "connect")
            payload = "x" * 20_000
            for n in range(300):
                await server.api("publish", {"channel": news, "data": {"n": n, "p": payload}})
                pub = await until(reader, "pub")
                assert orjson.loads(pub.pub.data)["n"] == n
            async with asyncio.timeout(WAIT):
                while "code 3008" not in server.log():
                    await asyncio.sleep(0.05)
            slow.cancel()
            reader.cancel()
