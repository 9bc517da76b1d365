"""rotary's own WebTransport test client on aioquic's HTTP/3 client, and a server to point it at.

``WtConnection`` opens a QUIC connection, sends the extended CONNECT of a WebTransport session
(``:protocol webtransport``) and then one bidirectional stream that carries the client protocol:
JSON commands one per line, or Protobuf commands length-delimited (``?cf_protocol=protobuf``).
``start_webtransport_server`` runs the whole in-process server (WebSocket, HTTP API over plain TCP
from the test harness) plus the HTTP/3 listener with a fresh self-signed ECDSA P-256 certificate,
on a free port number used for both TCP and UDP, as rotary uses them.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived

from helpers.certs import SelfSigned
from helpers.server import WAIT, InProcessServer, start_in_process
from rotary.protocol import pb
from rotary.protocol.codec import ProtocolError
from rotary.protocol.protobuf_codec import read_uvarint, uvarint
from rotary.server.config.load import parse_config
from rotary.server.config.schema import Config
from rotary.server.config.validate import check_http3
from rotary.server.http3 import start_http3
from rotary.transports.h3_requests import H3Requests

SECRET = "webtransport-test-secret-" + "x" * 16
API_KEY = "webtransport-api-key"


class _H3Client(QuicConnectionProtocol):
    """The client side of one QUIC connection: HTTP/3 events sorted per stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic, enable_webtransport=True)
        self.headers: dict[int, asyncio.Future[dict[bytes, bytes]]] = {}
        self.stream_data: dict[int, bytearray] = {}
        self.stream_ended: set[int] = set()
        self.connect_data: dict[int, bytearray] = {}
        self.terminated = False
        self.changed = asyncio.Event()
        self.own_streams: set[int] = set()
        """Streams this client opened for WebTransport: their data is raw, not HTTP/3 frames."""

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.terminated = True
        if isinstance(event, StreamDataReceived) and event.stream_id in self.own_streams:
            self.stream_data.setdefault(event.stream_id, bytearray()).extend(event.data)
            if event.end_stream:
                self.stream_ended.add(event.stream_id)
            self.changed.set()
            return
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                future = self.headers.setdefault(
                    h3_event.stream_id, asyncio.get_running_loop().create_future()
                )
                if not future.done():
                    future.set_result(dict(h3_event.headers))
                if h3_event.stream_ended:
                    self.stream_ended.add(h3_event.stream_id)
            elif isinstance(h3_event, WebTransportStreamDataReceived):
                self.stream_data.setdefault(h3_event.stream_id, bytearray()).extend(h3_event.data)
                if h3_event.stream_ended:
                    self.stream_ended.add(h3_event.stream_id)
            elif isinstance(h3_event, DataReceived):
                self.connect_data.setdefault(h3_event.stream_id, bytearray()).extend(h3_event.data)
                if h3_event.stream_ended:
                    self.stream_ended.add(h3_event.stream_id)
        self.changed.set()

    @property
    def quic(self) -> Any:
        return self._quic


class WtSession:
    """One WebTransport session and its client protocol stream."""

    def __init__(self, client: _H3Client, session_id: int, protobuf: bool) -> None:
        self.client = client
        self.session_id = session_id
        self.protobuf = protobuf
        self.stream_id: int | None = None
        self._read = 0
        self._pushes: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0
        self.id = ""
        self.answer_pings = True

    def open_stream(self) -> int:
        self.stream_id = self.client.h3.create_webtransport_stream(self.session_id, is_unidirectional=False)
        self.client.own_streams.add(self.stream_id)
        return self.stream_id

    def send_raw(self, data: bytes, end: bool = False) -> None:
        if self.stream_id is None:
            self.open_stream()
        assert self.stream_id is not None
        self.client.quic.send_stream_data(self.stream_id, data, end)
        self.client.transmit()

    async def command(self, **body: Any) -> dict[str, Any]:
        """Sends ``{"id": <next>, **body}`` and returns the reply with that id (as JSON-like dicts)."""
        self._next_id += 1
        command_id = self._next_id
        if self.protobuf:
            command = pb.Command(id=command_id)
            for field, value in body.items():
                getattr(command, field).CopyFrom(_pb_request(field, value))
            raw = command.SerializeToString()
            self.send_raw(uvarint(len(raw)) + raw)
        else:
            self.send_raw(orjson.dumps({"id": command_id, **body}) + b"\n")
        async with asyncio.timeout(WAIT):
            while command_id not in self._replies:
                await self._receive()
        return self._replies.pop(command_id)

    async def push(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                for index, push in enumerate(self._pushes):
                    if kind in push:
                        return self._pushes.pop(index)
                await self._receive()

    async def connect(self, user: str) -> dict[str, Any]:
        token = jwt.encode({"sub": user}, SECRET, algorithm="HS256")
        reply = await self.command(connect={"token": token})
        self.id = reply.get("connect", {}).get("client", "")
        return reply

    async def session_close(self) -> tuple[int, str]:
        """Waits for CLOSE_WEBTRANSPORT_SESSION on the CONNECT stream: its code and reason."""
        async with asyncio.timeout(WAIT):
            while True:
                data = bytes(self.client.connect_data.get(self.session_id, b""))
                if len(data) >= 2 and data[:2] == b"\x68\x43":
                    length, start = _quic_varint(data, 2)
                    if len(data) >= start + length:
                        payload = data[start : start + length]
                        return int.from_bytes(payload[:4], "big"), payload[4:].decode()
                if self.client.terminated:
                    raise ConnectionError("connection closed without a session close")
                await self._wait()

    async def stream_end(self) -> None:
        """Reads (keeping pushes and replies) until the server ends the stream."""
        async with asyncio.timeout(WAIT):
            while True:
                self._parse()
                if self.stream_id in self.client.stream_ended or self.client.terminated:
                    return
                await self._wait()

    async def _receive(self) -> None:
        if not self._parse():
            if self.stream_id in self.client.stream_ended or self.client.terminated:
                raise ConnectionError("stream ended")
            await self._wait()
            self._parse()

    async def _wait(self) -> None:
        self.client.changed.clear()
        await self.client.changed.wait()

    def _parse(self) -> bool:
        """Moves the complete replies received so far into pushes and replies; True if any."""
        data = bytes(self.client.stream_data.get(self.stream_id or -1, b""))
        found = False
        while self._read < len(data):
            if self.protobuf:
                try:
                    size, start = read_uvarint(data, self._read)
                except ProtocolError:  # the length prefix is still arriving
                    break
                if start + size > len(data):
                    break
                reply = pb.Reply.FromString(data[start : start + size])
                self._read = start + size
                item = _reply_dict(reply)
            else:
                end = data.find(b"\n", self._read)
                if end < 0:
                    break
                line = data[self._read : end]
                self._read = end + 1
                if not line:
                    continue
                item = orjson.loads(line)
            found = True
            if "push" in item:
                self._pushes.append(item["push"])
            elif item.get("id"):
                self._replies[item["id"]] = item
            elif self.answer_pings:  # a ping: answer with a pong
                self.send_raw(b"\x00" if self.protobuf else b"{}\n")
        return found


def _quic_varint(data: bytes, pos: int) -> tuple[int, int]:
    length = 1 << (data[pos] >> 6)
    value = data[pos] & 0x3F
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, pos + length


def _pb_request(field: str, value: dict[str, Any]) -> Any:
    request_type = type(getattr(pb.Command(), field))
    message = request_type()
    for key, item in value.items():
        setattr(message, key, item)
    return message


def _reply_dict(reply: pb.Reply) -> dict[str, Any]:
    """A Protobuf reply as the same shape the JSON protocol gives (data fields as bytes)."""
    from google.protobuf.json_format import MessageToDict

    out: dict[str, Any] = MessageToDict(reply, preserving_proto_field_name=True)
    if reply.id:
        out["id"] = reply.id
    if reply.HasField("push") and reply.push.HasField("pub"):
        out["push"]["pub"]["data"] = reply.push.pub.data
    return out


class H3Response:
    """The response to an ordinary HTTP/3 request: status and headers, the body as it arrives."""

    def __init__(self, client: _H3Client, stream_id: int, headers: dict[bytes, bytes]) -> None:
        self.client = client
        self.stream_id = stream_id
        self.status = int(headers[b":status"])
        self.headers = {key.decode(): value.decode() for key, value in headers.items()}

    @property
    def received(self) -> bytes:
        return bytes(self.client.connect_data.get(self.stream_id, b""))

    @property
    def ended(self) -> bool:
        return self.stream_id in self.client.stream_ended

    async def read(self) -> bytes:
        """The whole body, once the server ended the stream."""
        async with asyncio.timeout(WAIT):
            while not self.ended:
                if self.client.terminated:
                    raise ConnectionError("connection closed before the response ended")
                self.client.changed.clear()
                await self.client.changed.wait()
        return self.received

    async def until(self, text: bytes) -> bytes:
        """The body received so far, once it contains ``text``."""
        async with asyncio.timeout(WAIT):
            while text not in self.received:
                if self.ended or self.client.terminated:
                    raise ConnectionError(f"stream ended before {text!r}: {self.received!r}")
                self.client.changed.clear()
                await self.client.changed.wait()
        return self.received


class WtConnection:
    """A QUIC connection to the server's HTTP/3 port, opening WebTransport sessions."""

    def __init__(self, client: _H3Client, port: int) -> None:
        self.client = client
        self.port = port

    async def request(
        self,
        path: str,
        *,
        method: bytes = b"CONNECT",
        protocol: bytes | None = b"webtransport",
        origin: str | None = None,
    ) -> tuple[int, int]:
        """Sends a request's headers; the response status and the request's stream id."""
        stream_id = self.client.quic.get_next_available_stream_id()
        headers = [
            (b":method", method),
            (b":scheme", b"https"),
            (b":authority", f"127.0.0.1:{self.port}".encode()),
        ]
        headers.append((b":path", path.encode()))
        if protocol is not None:
            headers.append((b":protocol", protocol))
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        self.client.h3.send_headers(stream_id, headers, end_stream=method not in (b"CONNECT", b"POST"))
        self.client.transmit()
        future = self.client.headers.setdefault(stream_id, asyncio.get_running_loop().create_future())
        async with asyncio.timeout(WAIT):
            response = await future
        return int(response[b":status"]), stream_id

    async def fetch(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> H3Response:
        """An ordinary HTTP/3 request; the response once its headers came (``read`` its body)."""
        stream_id = self.client.quic.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", f"127.0.0.1:{self.port}".encode()),
            (b":path", path.encode()),
        ]
        fields += [(key.lower().encode(), value.encode()) for key, value in (headers or {}).items()]
        self.client.h3.send_headers(stream_id, fields, end_stream=not body)
        if body:
            self.client.h3.send_data(stream_id, body, end_stream=True)
        self.client.transmit()
        future = self.client.headers.setdefault(stream_id, asyncio.get_running_loop().create_future())
        async with asyncio.timeout(WAIT):
            response = await future
        return H3Response(self.client, stream_id, response)

    async def session(self, path: str = "/connection/webtransport", **options: Any) -> WtSession:
        protobuf = "cf_protocol=protobuf" in path
        status, stream_id = await self.request(path, **options)
        assert status == 200, status
        return WtSession(self.client, stream_id, protobuf)


@asynccontextmanager
async def wt_connect(port: int) -> AsyncIterator[WtConnection]:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE, max_datagram_frame_size=65536
    )
    async with connect("127.0.0.1", port, configuration=configuration, create_protocol=_H3Client) as client:
        assert isinstance(client, _H3Client)
        yield WtConnection(client, port)


@dataclass
class WebTransportServer:
    rotary: InProcessServer
    quic: QuicServer
    port: int

    async def close(self) -> None:
        await self.rotary.close()
        if self.rotary.server.http3 is not None:
            await self.rotary.server.http3.drain(3.0)
        self.quic.close()


def webtransport_config(port: int, certificate: SelfSigned, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "http_server": {
            "port": port,
            "address": "127.0.0.1",
            "tls": {"enabled": True, "cert_pem": certificate.cert_pem, "key_pem": certificate.key_pem},
            "http3": {"enabled": True},
        },
        "webtransport": {"enabled": True},
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
    }
    for key, value in overrides.items():
        section = config.setdefault(key, {})
        if isinstance(value, dict):
            section.update(value)
        else:
            config[key] = value
    return config


def parse_webtransport_config(directory: Path, raw: dict[str, Any]) -> Config:
    """``raw`` as a Config, without the cross-key validation: until TLS on the TCP server is built,
    validation refuses the ``http_server.tls`` that HTTP/3 needs (the test harness serves TCP in
    clear). The HTTP/3 and WebTransport rules are checked alone, so the config is still one rotary
    would accept once TLS is there."""
    path = directory / "config.json"
    path.write_bytes(orjson.dumps(raw))
    config = parse_config(str(path), {}, {}).config
    problems: list[str] = []
    check_http3(config, problems.append)
    assert not problems, problems
    return config


@asynccontextmanager
async def webtransport_server(
    tmp_path: Any, port: int, raw: dict[str, Any]
) -> AsyncIterator[WebTransportServer]:
    """The in-process server for ``raw`` plus its HTTP/3 listener on UDP ``port``."""
    config = parse_webtransport_config(tmp_path, raw)
    rotary = await start_in_process(config)
    assert rotary.server.http3 is not None
    assert rotary.http.server.runner is not None and rotary.http.server.runner.server is not None
    web_server = rotary.http.server.runner.server  # the TCP routes, over HTTP/3 too, as ``serve`` does
    rotary.server.http3.requests = H3Requests(rotary.server.deadlines.protocol_factory(web_server))
    quic = await start_http3(rotary.server.http3, config)
    server = WebTransportServer(rotary, quic, port)
    try:
        yield server
    finally:
        await server.close()
