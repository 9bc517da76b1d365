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


def self_signed_pem() -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 and its key, both PEM."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


async def test_tls_is_served_when_asked_for(tmp_path: Path) -> None:
    cert_pem, key_pem = self_signed_pem()
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    port = free_port()
    tls = {"enabled": True, "cert_pem": str(tmp_path / "cert.pem"), "key_pem": key_pem.decode()}
    config = merged(
        DEFAULT_CONFIG, {"uni_grpc": {"enabled": True, "address": "127.0.0.1", "port": port, "tls": tls}}
    )
    with running_rotary(tmp_path / "rotary", config):
        credentials = grpc.ssl_channel_credentials(root_certificates=cert_pem)
        async with aio.secure_channel(f"127.0.0.1:{port}", credentials) as ch:
            await asyncio.wait_for(ch.channel_ready(), WAIT)
            stream = consume(ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "tls-user"})))
            assert (await until(stream, "connect")).connect.client
            stream.cancel()
        async with aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            plain = consume(ch, unistream_pb2.ConnectRequest(token=sign_token({"sub": "plain"})))
            with pytest.raises(aio.AioRpcError):
                await asyncio.wait_for(plain.read(), WAIT)


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
