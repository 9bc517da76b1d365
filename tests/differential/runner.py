"""One runner for every differential scenario: the same steps against Centrifugo and rotary.

A scenario is a name and a list of steps (``Api`` requests, WebSocket ``Open``/``Cmd``/``Send``/
``Pushes``/``Closed`` steps on named connections, and ``Http`` requests to the other connection
endpoints, whose streamed responses ``Events`` reads on). The runner plays the steps against each
server, records what every recording step observed (HTTP status, headers and body, a reply, the next
pushes or stream messages, a close code and reason), normalizes what must differ between two servers
(client, session and node ids, epochs, versions, node names, uptimes, token ttls) and compares the two
transcripts step by step.

A difference the project keeps on purpose is listed in ``allowlist.toml`` with its reason, the step
and the exact normalized value each server gives there; the runner then checks that the transcripts
differ exactly there and exactly so, so the list cannot hide a new difference, and fails on an entry
that no longer differs.

WebSocket steps speak the JSON protocol or Protobuf (rotary's generated classes in
``rotary.protocol.pb``, length-delimited); commands are written once, as JSON-protocol objects, and
replies of both protocols are turned into the same JSON-like form, so one scenario runs with both.
See https://centrifugal.dev/docs/transports/client_protocol.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc import aio as grpc_aio

from differential.known import Known
from rotary.protocol import pb
from rotary.protocol._pb import unistream_pb2

SECRET = "differential-hmac-secret-key-of-at-least-32-bytes"
API_KEY = "differential-api-key"
WAIT = 5.0
"""Seconds a step waits for a reply, a push or a close before recording a timeout."""

ALLOWLIST = Path(__file__).with_name("allowlist.toml")


def token(sub: str, secret: str = SECRET, **claims: Any) -> str:
    """An HS256 connection or subscription JWT; ``exp`` defaults to one hour from now."""
    claims.setdefault("exp", int(time.time()) + 3600)
    return jwt.encode({"sub": sub, **claims}, secret, algorithm="HS256")


# Steps -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """``POST /api/<method>`` (``method=""``: the legacy ``/api``), recorded as status and body."""

    method: str
    body: Any = None
    raw: bytes | None = None
    key: str | None = API_KEY
    headers: tuple[tuple[str, str], ...] = ()
    http_method: str = "POST"
    query: str = ""


@dataclass(frozen=True)
class Open:
    """Opens WebSocket ``conn``; ``protocol=None`` takes the protocol the scenario runs with."""

    conn: str = "a"
    protocol: str | None = None
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] | None = None
    """None sends the scenario protocol's usual one (``centrifuge-protobuf``, or none for JSON)."""
    path: str = "/connection/websocket"


@dataclass(frozen=True)
class Cmd:
    """Sends a command (a JSON-protocol object without id) and records its reply or the close."""

    body: dict[str, Any]
    conn: str = "a"
    id: int | None = None
    """The command id sent; None numbers commands 1, 2, ... per connection."""
    until_closed: int = 0
    """With N > 0, sends the command again while it is answered, N times at most, and records the
    close once one comes, else the last answer: for a close the server starts after answering
    the API call that asked for it (Centrifugo's disconnect), which one round trip may not see."""


@dataclass(frozen=True)
class Send:
    """Sends a raw frame (text for str, binary for bytes) without waiting for anything."""

    frame: str | bytes
    conn: str = "a"


@dataclass(frozen=True)
class Pushes:
    """Records the next ``n`` pushes of ``conn``, in order."""

    n: int = 1
    conn: str = "a"


@dataclass(frozen=True)
class Closed:
    """Records how the server closes ``conn``: code, reason and any replies not read before."""

    conn: str = "a"


@dataclass(frozen=True)
class Http:
    """An HTTP request to a connection endpoint, recorded as status, the headers that matter
    (``RECORDED_HEADERS``) and the body. With ``stream`` the response stays open under that name
    and its first ``events`` messages are recorded instead of the body; ``Events`` reads more."""

    path: str
    method: str = "GET"
    body: Any = None
    """Sent as JSON (after "$EPOCH", "$SESSION", "$NODE" substitution); ``raw`` is sent as is."""
    raw: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""
    stream: str | None = None
    events: int = 0
    http10: bool = False
    """Sends the request as HTTP/1.0, which streams without chunked framing."""

    def __repr__(self) -> str:
        raw = "" if self.raw is None else f", raw={self.raw[:40]!r}" + ("..." if len(self.raw) > 40 else "")
        return f"Http({self.method} {self.path}{raw}, stream={self.stream})"


@dataclass(frozen=True)
class Events:
    """Records the next ``n`` messages of the HTTP stream ``stream``, or how it ended."""

    n: int = 1
    stream: str = "s"


@dataclass(frozen=True)
class Grpc:
    """Calls uni_grpc's ``Consume`` with ``request`` (a ConnectRequest in its JSON form) and keeps the
    Push stream open as ``stream``, recording its first ``events`` pushes; ``Events`` reads more."""

    request: dict[str, Any]
    stream: str = "g"
    events: int = 1


Step = Api | Open | Cmd | Send | Pushes | Closed | Http | Events | Grpc


def connect(user: str = "", conn: str = "a", **fields: Any) -> Cmd:
    """A connect command with a token for ``user`` (none when ``user`` is empty)."""
    body = {"token": token(user)} if user else {}
    return Cmd({"connect": {**body, **fields}}, conn)


def sub(channel: str, conn: str = "a", **fields: Any) -> Cmd:
    return Cmd({"subscribe": {"channel": channel, **fields}}, conn)


def alive(conn: str = "a", until_closed: int = 0) -> Cmd:
    """A command that shows the connection still serves: an RPC, which the configs here leave to
    no proxy, so it is answered with error 108 without closing anything. (The ``ping`` command is
    legacy in protocol v2 and closes the connection with 3501.) ``until_closed``: see Cmd."""
    return Cmd({"rpc": {"method": "probe"}}, conn, until_closed=until_closed)


def ws(*steps: Step, user: str = "u", conn: str = "a") -> list[Step]:
    """Opens ``conn``, connects as ``user``, then ``steps``."""
    return [Open(conn), connect(user, conn), *steps]


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list[Step]
    protocols: tuple[str, ...] = ("json", "protobuf")
    known: tuple[Known, ...] = ()
    """Differences rotary must still fix (differential.known), shown by this scenario."""


def with_known_differences(
    scenarios: list[Scenario], differences: dict[str, Known | tuple[Known, ...]]
) -> list[Scenario]:
    """``scenarios`` with the known differences ``differences`` names them with."""
    names = {scenario.name for scenario in scenarios}
    assert not differences.keys() - names, f"unknown scenarios: {differences.keys() - names}"
    result = []
    for scenario in scenarios:
        known = differences.get(scenario.name, ())
        result.append(replace(scenario, known=known if isinstance(known, tuple) else (known,)))
    return result


def _reason(known: Iterable[Known]) -> str:
    return "difference: " + "; and ".join(k.reason for k in known)


def params(scenarios: Iterable[Scenario], *, ws_protocols: bool = True) -> list[Any]:
    """pytest params of (scenario, protocol), one per protocol the scenario runs with; a scenario
    showing a difference that cannot be hidden is marked xfail(strict)."""
    result = []
    for scenario in scenarios:
        whole = [k for k in scenario.known if k.hide is None]
        marks = [pytest.mark.xfail(strict=True, reason=_reason(whole))] if whole else []
        protocols = scenario.protocols if ws_protocols else ("json",)
        for protocol in protocols:
            name = f"{scenario.name}-{protocol}" if ws_protocols else scenario.name
            result.append(pytest.param(scenario, protocol, id=name, marks=marks))
    return result


# Protobuf <-> JSON-protocol form -----------------------------------------------------------------


def _to_pb_fields(message: Message, obj: dict[str, Any]) -> None:
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in obj.items():
        descriptor = fields[name]
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            if descriptor.message_type.GetOptions().map_entry:
                target = getattr(message, name)
                value_field = descriptor.message_type.fields_by_name["value"]
                for key, item in value.items():
                    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                        _to_pb_fields(target[key], item)
                    else:
                        target[key] = item
            elif _repeated(descriptor):
                for item in value:
                    _to_pb_fields(getattr(message, name).add(), item)
            else:
                getattr(message, name).SetInParent()
                _to_pb_fields(getattr(message, name), value)
        elif descriptor.type == FieldDescriptor.TYPE_BYTES:
            setattr(message, name, orjson.dumps(value))
        elif _repeated(descriptor):
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)


def _repeated(descriptor: FieldDescriptor) -> bool:
    return bool(descriptor.is_repeated)


def parse(text: str | bytes) -> Any:
    """JSON from a server, with each fraction or exponent kept as its text ("float:1e5"), so that
    two servers writing the same number differently do not compare equal."""
    return json.loads(text, parse_float=lambda literal: f"float:{literal}")


def _bytes_value(data: bytes) -> Any:
    try:
        return parse(data)
    except ValueError:
        return "bytes:" + base64.b64encode(data).decode()


def _from_pb(message: Message) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for descriptor, value in message.ListFields():
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            if descriptor.message_type.GetOptions().map_entry:
                value_field = descriptor.message_type.fields_by_name["value"]
                is_message = value_field.type == FieldDescriptor.TYPE_MESSAGE
                result[descriptor.name] = {k: _from_pb(v) if is_message else v for k, v in value.items()}
            elif _repeated(descriptor):
                result[descriptor.name] = [_from_pb(item) for item in value]
            else:
                result[descriptor.name] = _from_pb(value)
        elif descriptor.type == FieldDescriptor.TYPE_BYTES:
            result[descriptor.name] = _bytes_value(value)
        elif _repeated(descriptor):
            result[descriptor.name] = list(value)
        else:
            result[descriptor.name] = value
    return result


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_command(protocol: str, command: dict[str, Any]) -> str | bytes:
    if protocol == "json":
        return orjson.dumps(command).decode()
    message = pb.Command()
    _to_pb_fields(message, command)
    body = message.SerializeToString()
    return _uvarint(len(body)) + body


def decode_frame(protocol: str, data: str | bytes) -> list[dict[str, Any]]:
    """The replies in one frame, JSON ones as parsed, Protobuf ones in the same JSON-like form."""
    if protocol == "json":
        text = data if isinstance(data, str) else data.decode()
        return [parse(line) for line in text.splitlines() if line.strip()]
    raw = data if isinstance(data, bytes) else data.encode()
    replies, pos = [], 0
    while pos < len(raw):
        size, pos = _read_uvarint(raw, pos)
        reply = pb.Reply()
        reply.ParseFromString(raw[pos : pos + size])
        pos += size
        replies.append(_from_pb(reply))
    return replies


# Playing a scenario --------------------------------------------------------------------------


@dataclass
class Target:
    """What the runner needs of a running server."""

    name: str
    http_url: str
    grpc_address: str = ""
    """host:port of uni_grpc, when the server runs it."""

    @property
    def ws_url(self) -> str:
        return self.ws_base + "/connection/websocket"

    @property
    def ws_base(self) -> str:
        return self.http_url.replace("http://", "ws://")


REMEMBERED = ("epoch", "session", "node")
"""Values a server reports that later steps refer to as "$EPOCH", "$SESSION", "$NODE"."""


def _substitute(value: Any, seen: dict[str, Any]) -> Any:
    """``value`` with every "$EPOCH" (or "$SESSION", "$NODE") replaced by the last one this server
    reported."""
    if isinstance(value, str) and value.startswith("$") and value[1:].lower() in REMEMBERED:
        return seen.get(value[1:].lower(), "")
    if isinstance(value, dict):
        return {k: _substitute(v, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, seen) for v in value]
    return value


def _remember(value: Any, seen: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in REMEMBERED and isinstance(item, str) and item:
                seen[key] = item
            _remember(item, seen)
    elif isinstance(value, list):
        for item in value:
            _remember(item, seen)


@dataclass
class Connection:
    ws: aiohttp.ClientWebSocketResponse
    protocol: str
    replies: dict[int, dict[str, Any]] = field(default_factory=dict)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0
    close: dict[str, Any] | None = None

    async def receive(self) -> None:
        """Reads one frame into replies and pushes; answers pings; notes a close."""
        msg = await self.ws.receive()
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            for reply in decode_frame(self.protocol, msg.data):
                if "push" in reply:
                    self.pushes.append(reply["push"])
                elif reply.get("id"):
                    self.replies[reply.pop("id")] = reply
                elif reply:
                    self.pushes.append({"unsolicited": reply})
                else:  # a ping: answer with a pong
                    await self.ws.send_bytes(b"\x00") if self.protocol == "protobuf" else (
                        await self.ws.send_str("{}")
                    )
            return
        if msg.type is aiohttp.WSMsgType.CLOSE:  # what the server's close frame said
            self.close = {"closed": msg.data, "reason": msg.extra or ""}
        else:
            self.close = {"closed": self.ws.close_code, "reason": ""}


RECORDED_HEADERS = (
    "Content-Type",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Cache-Control",
    "Pragma",
    "Expire",
    "X-Accel-Buffering",
)
"""Response headers of connection endpoints an ``Http`` step records (when present)."""


@dataclass
class Stream:
    """An open HTTP response: SSE ``data:`` lines, length-prefixed Protobuf replies
    (``application/octet-stream``), else one JSON message per line."""

    response: aiohttp.ClientResponse
    sse: bool
    protobuf: bool = False
    messages: list[Any] = field(default_factory=list)
    ended: bool = False

    async def receive(self) -> None:
        """Reads one line (SSE: one event; Protobuf: one reply) into messages; notes the end."""
        if self.protobuf:
            await self._receive_protobuf()
            return
        lines: list[bytes] = []
        while not self.ended:
            try:
                line = await self.response.content.readline()
            except aiohttp.ClientError:
                line = b""
            if not line:
                self.ended = True
            elif not self.sse:
                lines.append(line)
                break
            elif line.startswith(b"data:"):
                lines.append(line[5:].removeprefix(b" "))
            elif not line.strip() and lines:  # the blank line that ends an event
                break
        self.messages.extend(_bytes_value(line.strip()) for line in lines if line.strip())

    async def _receive_protobuf(self) -> None:
        content = self.response.content
        try:
            prefix = b""
            while not prefix or prefix[-1] >= 0x80:
                prefix += await content.readexactly(1)
            size, _ = _read_uvarint(prefix, 0)
            self.messages.extend(decode_frame("protobuf", prefix + await content.readexactly(size)))
        except (asyncio.IncompleteReadError, aiohttp.ClientError):
            self.ended = True


CONSUME = "/centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume"


@dataclass
class GrpcStream:
    """An open uni_grpc ``Consume`` call; its pushes in their JSON form."""

    channel: grpc_aio.Channel
    call: Any
    messages: list[Any] = field(default_factory=list)
    ended: bool = False

    async def receive(self) -> None:
        try:
            push = await self.call.read()
        except grpc_aio.AioRpcError as exc:
            self.messages.append({"status": exc.code().name})
            push = grpc_aio.EOF
        if push is grpc_aio.EOF:
            self.ended = True
        else:
            self.messages.append(_from_pb(push))

    async def close(self) -> None:
        self.call.cancel()
        await self.channel.close()


async def _events(stream: Stream | GrpcStream, n: int) -> list[Any]:
    """The next ``n`` messages of ``stream``, and what ended the wait when fewer came."""
    ended: dict[str, Any] = {"ended": True}
    try:
        async with asyncio.timeout(WAIT):
            while len(stream.messages) < n and not stream.ended:
                await stream.receive()
    except TimeoutError:
        ended = {"timeout": True}
    got, stream.messages = stream.messages[:n], stream.messages[n:]
    return got if len(got) == n else [*got, ended]


def _body(body: bytes) -> Any:
    """A response body as JSON, else as text, else (Protobuf) as base64."""
    try:
        return parse(body)
    except ValueError:
        pass
    try:
        return body.decode().strip()
    except UnicodeDecodeError:
        return "bytes:" + base64.b64encode(body).decode()


async def _until(conn: Connection, done: Any) -> dict[str, Any] | None:
    """Receives until ``done()`` or the close; None when it holds, else what ended the wait."""
    try:
        async with asyncio.timeout(WAIT):
            while not done():
                if conn.close is not None:
                    return conn.close
                await conn.receive()
    except TimeoutError:
        return {"timeout": True}
    return None


async def _api(session: aiohttp.ClientSession, target: Target, step: Api) -> dict[str, Any]:
    headers = dict(step.headers)
    if step.key is not None:
        headers.setdefault("X-API-Key", step.key)
    data = step.raw if step.raw is not None else orjson.dumps(step.body)
    url = f"{target.http_url}/api" + (f"/{step.method}" if step.method else "")
    if step.query:
        url += "?" + step.query
    async with session.request(step.http_method, url, data=data, headers=headers) as response:
        body = await response.read()
    try:
        parsed: Any = parse(body)
    except ValueError:
        parsed = body.decode(errors="replace").strip()
    if step.method == "" and isinstance(parsed, str):
        try:  # the legacy API answers one JSON object per line
            parsed = [parse(line) for line in parsed.splitlines() if line]
        except ValueError:
            pass
    return {"status": response.status, "type": response.headers.get("Content-Type", ""), "body": parsed}


async def play(target: Target, steps: list[Step], protocol: str) -> dict[int, Any]:
    """What each recording step observed on ``target``, by step index."""
    async with aiohttp.ClientSession() as session:
        player = Player(target, session, protocol)
        try:
            for index, step in enumerate(steps):
                observed = await player.step(step)
                if observed is not None:
                    player.record[index] = observed
                    _remember(observed, player.seen)
        finally:
            for conn in player.conns.values():
                await conn.ws.close()
            for stream in player.streams.values():
                if isinstance(stream, GrpcStream):
                    await stream.close()
                else:
                    stream.response.close()
            for http10 in player.http10_sessions:
                await http10.close()
    return player.record


@dataclass
class Player:
    """Plays steps against one server, keeping its connections and the last epoch it reported."""

    target: Target
    session: aiohttp.ClientSession
    protocol: str
    record: dict[int, Any] = field(default_factory=dict)
    conns: dict[str, Connection] = field(default_factory=dict)
    streams: dict[str, Stream | GrpcStream] = field(default_factory=dict)
    http10_sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)

    async def step(self, step: Step) -> Any:
        """Plays one step; what it observed, or None for a step that records nothing."""
        if isinstance(step, Api):
            body = None if step.body is None else _substitute(step.body, self.seen)
            return await _api(self.session, self.target, replace(step, body=body))
        if isinstance(step, Cmd):
            return await _command(
                self.conns[step.conn], replace(step, body=_substitute(step.body, self.seen))
            )
        if isinstance(step, Open):
            return await self._open(step)
        if isinstance(step, Http):
            return await self._http(step)
        if isinstance(step, Events):
            return await _events(self.streams[step.stream], step.n)
        if isinstance(step, Grpc):
            return await self._grpc(step)
        if step.conn not in self.conns:  # its handshake was refused
            return {"not_open": step.conn}
        conn = self.conns[step.conn]
        if isinstance(step, Send):
            if isinstance(step.frame, bytes):
                await conn.ws.send_bytes(step.frame)
            else:
                await conn.ws.send_str(step.frame)
            return None
        if isinstance(step, Pushes):
            ended = await _until(conn, lambda: len(conn.pushes) >= step.n)
            got, conn.pushes = conn.pushes[: step.n], conn.pushes[step.n :]
            return got if ended is None else [*got, ended]
        ended = await _until(conn, lambda: False)
        leftover = [*conn.pushes, *conn.replies.values()]
        conn.pushes, conn.replies = [], {}
        return {**(ended or {}), **({"unread": leftover} if leftover else {})}

    async def _open(self, step: Open) -> Any:
        protocol = step.protocol or self.protocol
        subprotocols = step.subprotocols
        if subprotocols is None:
            subprotocols = ("centrifuge-protobuf",) if protocol == "protobuf" else ()
        url = self.target.ws_base + step.path + (f"?{step.query}" if step.query else "")
        try:
            wsock = await self.session.ws_connect(url, protocols=subprotocols, headers=dict(step.headers))
        except aiohttp.WSServerHandshakeError as exc:
            return {"handshake": exc.status}
        self.conns[step.conn] = Connection(wsock, protocol)
        return {"subprotocol": wsock.protocol} if step.subprotocols else None

    async def _grpc(self, step: Grpc) -> Any:
        channel = grpc_aio.insecure_channel(self.target.grpc_address)
        consume = channel.unary_stream(
            CONSUME,
            request_serializer=unistream_pb2.ConnectRequest.SerializeToString,
            response_deserializer=unistream_pb2.Push.FromString,
        )
        request = unistream_pb2.ConnectRequest()
        _to_pb_fields(request, step.request)
        stream = GrpcStream(channel, consume(request))
        self.streams[step.stream] = stream
        return await _events(stream, step.events)

    async def _http(self, step: Http) -> Any:
        data, headers = step.raw, dict(step.headers)
        if data is None and step.body is not None:
            data = orjson.dumps(_substitute(step.body, self.seen))
            headers.setdefault("Content-Type", "application/json")
        elif data is not None:  # aiohttp would say application/octet-stream: Protobuf to the servers
            headers.setdefault("Content-Type", "text/plain")
        url = self.target.http_url + step.path + (f"?{step.query}" if step.query else "")
        session = self.session
        if step.http10:
            session = aiohttp.ClientSession(version=aiohttp.HttpVersion10)
            self.http10_sessions.append(session)
        response = await session.request(step.method, url, data=data, headers=headers)
        recorded = {name: response.headers[name] for name in RECORDED_HEADERS if name in response.headers}
        seen: dict[str, Any] = {"status": response.status, "headers": recorded}
        if step.stream is None or response.status != 200:
            seen["body"] = _body(await response.read())
            response.release()
            return seen
        content_type = response.headers.get("Content-Type", "")
        stream = Stream(
            response, content_type.startswith("text/event-stream"), content_type == "application/octet-stream"
        )
        self.streams[step.stream] = stream
        if step.events:
            seen["events"] = await _events(stream, step.events)
        return seen


async def _command(conn: Connection, step: Cmd) -> Any:
    outcome = await _command_once(conn, step)
    for _ in range(step.until_closed - 1):
        if conn.close is not None:
            return conn.close
        if not isinstance(outcome, dict) or {"closed", "not_sent", "timeout"} & outcome.keys():
            return outcome
        outcome = await _command_once(conn, step)
    return conn.close if step.until_closed and conn.close is not None else outcome


async def _command_once(conn: Connection, step: Cmd) -> Any:
    if conn.close is not None:
        return {"not_sent": "connection closed"}
    conn.next_id += 1
    command_id = conn.next_id if step.id is None else step.id
    command = {"id": command_id, **step.body} if command_id else dict(step.body)
    frame = encode_command(conn.protocol, command)
    try:
        if isinstance(frame, bytes):
            await conn.ws.send_bytes(frame)
        else:
            await conn.ws.send_str(frame)
    except ConnectionError:
        return {"not_sent": "connection closed"}
    ended = await _until(conn, lambda: command_id in conn.replies)
    return conn.replies.pop(command_id) if ended is None else ended


# Normalizing -----------------------------------------------------------------------------------

MASKED_KEYS = {"epoch", "version", "uptime", "uid", "ttl", "time", "session", "node"}
"""Keys whose values legitimately differ between two servers (when present and non-empty)."""


def _client_ids(steps: list[Step], record: dict[int, Any]) -> dict[str, str]:
    ids = {}
    for index, step in enumerate(steps):
        if isinstance(step, Cmd) and "connect" in step.body:
            client = (record.get(index) or {}).get("connect", {}).get("client")
            if client:
                ids[client] = f"<client:{step.conn}>"
    for client in _connected_clients(record):  # unidirectional and emulated connections
        ids.setdefault(client, f"<client:{len(ids)}>")
    return ids


def _connected_clients(value: Any) -> Iterable[str]:
    """The client ids of every connect result or push in ``value``, in order."""
    if isinstance(value, dict):
        connect = value.get("connect")
        if isinstance(connect, dict) and isinstance(connect.get("client"), str):
            yield connect["client"]
        for item in value.values():
            yield from _connected_clients(item)
    elif isinstance(value, list):
        for item in value:
            yield from _connected_clients(item)


def normalize(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        result = {}
        for original, item in value.items():
            key = ids.get(original, original)
            if key in MASKED_KEYS and item not in ("", 0, None):
                result[key] = f"<{key}>"
            elif key == "nodes" and isinstance(item, list):
                result[key] = [_node(normalize(n, ids)) for n in item]
            else:
                result[key] = normalize(item, ids)
        return result
    if isinstance(value, list):
        return [normalize(item, ids) for item in value]
    if isinstance(value, str):
        for client, placeholder in ids.items():
            value = value.replace(client, placeholder)
    return value


def _node(node: Any) -> Any:
    """An ``info`` node: its name and process figures are the host's, not the server's behaviour.
    Its uptime depends on when it started (0 s is left out), and Centrifugo's ``metrics`` appear only
    after its first snapshot, so both are compared by neither value nor presence. rotary has no
    metrics yet (Prometheus and node metrics are a later issue)."""
    if isinstance(node, dict):
        node = {k: v for k, v in node.items() if k not in ("metrics", "uptime")}
        node = {k: ("<masked>" if k in ("name", "process") else v) for k, v in node.items()}
    return node


# Comparing -------------------------------------------------------------------------------------


def _allowlist() -> dict[str, dict[int, dict[str, Any]]]:
    entries: dict[str, dict[int, dict[str, Any]]] = {}
    with ALLOWLIST.open("rb") as f:
        for entry in tomllib.load(f).get("difference", []):
            assert entry.get("reason"), f"allowlist entry without a reason: {entry}"
            entries.setdefault(entry["scenario"], {})[int(entry["step"])] = {
                "centrifugo": json.loads(entry["centrifugo"]),
                "rotary": json.loads(entry["rotary"]),
            }
    return entries


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


async def check(centrifugo: Target, rotary: Target, scenario: Scenario, protocol: str, test_id: str) -> None:
    """Plays the scenario against both servers and fails on any difference not in the allowlist."""
    observed = {}
    for target in (centrifugo, rotary):
        record = await play(target, scenario.steps, protocol)
        observed[target.name] = normalize(record, _client_ids(scenario.steps, record))
    hidden = [k for k in scenario.known if k.hide is not None]
    if not hidden:
        assert_same(test_id, observed["centrifugo"], observed["rotary"], scenario.steps, scenario.name)
        return
    centrifugo_seen, rotary_seen = observed["centrifugo"], observed["rotary"]
    for known in hidden:
        assert known.hide is not None
        centrifugo_seen, rotary_seen = known.hide(centrifugo_seen), known.hide(rotary_seen)
    assert_same(test_id, centrifugo_seen, rotary_seen, scenario.steps, scenario.name)
    assert observed["centrifugo"] != observed["rotary"], (
        f"the known difference no longer shows; remove it from this scenario: {_reason(hidden)}"
    )
    pytest.xfail(_reason(hidden))


def assert_same(
    test_id: str,
    centrifugo: dict[int, Any],
    rotary: dict[int, Any],
    steps: list[Any] | None = None,
    name: str = "",
) -> None:
    """Fails on any step where the two records differ, unless the allowlist lists exactly that."""
    allowlist = _allowlist()
    expected_differences = allowlist.get(test_id) or allowlist.get(name, {})
    lines: list[str] = []
    snippets: list[str] = []
    for index in sorted(centrifugo.keys() | rotary.keys()):
        ours, theirs = rotary.get(index), centrifugo.get(index)
        label = f"step {index}" + (f" ({steps[index]})" if steps else "")
        allowed = expected_differences.pop(index, None)
        if allowed is not None:
            if allowed != {"centrifugo": theirs, "rotary": ours}:
                lines.append(f"{label} differs from its allowlist entry:")
                lines.append(f"  centrifugo: {_show(theirs)}\n  rotary:     {_show(ours)}")
        elif ours != theirs:
            lines.append(f"{label}:")
            lines.append(f"  centrifugo: {_show(theirs)}\n  rotary:     {_show(ours)}")
            snippets.append(_entry(test_id, index, theirs, ours))
    for index in expected_differences:
        lines.append(f"allowlist entry for step {index} of {test_id} matches no recorded step")
    if snippets:
        lines.append("\nallowlist.toml entries, if the difference is meant to stay:\n" + "\n".join(snippets))
    assert not lines, "\n".join(lines)


def _entry(test_id: str, index: int, centrifugo: Any, rotary: Any) -> str:
    return "\n".join(
        [
            "[[difference]]",
            f"scenario = {json.dumps(test_id)}",
            f"step = {index}",
            'reason = "..."',
            f"centrifugo = {_toml_string(_show(centrifugo))}",
            f"rotary = {_toml_string(_show(rotary))}",
        ]
    )


def _toml_string(text: str) -> str:
    return "'" + text + "'" if "'" not in text and "\n" not in text else json.dumps(text)
