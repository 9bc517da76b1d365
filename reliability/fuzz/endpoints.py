"""In-process fuzz targets of the server's endpoints: the code a route runs on a body, without a socket.

The socket-level targets (targets.py, ``*_socket``) send each input through aiohttp on a loopback
port, which caps them at about a hundred inputs a second on a shared machine. These call what the
route calls once the request is read: the API method's decode, executor and encode
(``method_response``), the legacy API's command loop, the GRPC servicer's handler with its request
deserializer, the emulation endpoint's ``emulate`` and a live emulated session's client, and the
streaming endpoints' connect (the connect request parser and the Client with its hooks). The node is
a real one on the memory engine in the same process. What only the socket path shows (413 for a body
past the limit, the stream's framing, the HTTP method and key checks) stays with the socket targets,
whose short run is in the suite.

Contract of every target: every input gets a Centrifugo answer (a result, an API error other than
100 ``internal``, a client-protocol error or disconnect other than 100 and 3004, an HTTP 4xx with a
message, a GRPC status of a mapped error), nothing is logged at ERROR, no task is left behind, and
no input takes longer than ``INPUT_DEADLINE`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc  # type: ignore[import-untyped]
import orjson
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2  # type: ignore[import-untyped]

from reliability.fuzz.harness import ContractBroken, RecordingTransport
from reliability.fuzz.targets import (
    API_PATHS,
    CONNECT_TOKEN,
    NODE_PLACEHOLDER,
    UNI_PATHS,
    ClientFrames,
    HttpApiSocket,
    ServerTarget,
)
from rotary.node.client import Client
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolType
from rotary.protocol.glob import InvalidPattern, compile_pattern
from rotary.protocol.protobuf_codec import delimited
from rotary.server.api._pb import api_pb2
from rotary.server.api.grpc_api import GrpcApi
from rotary.server.api.http import legacy_body_response, method_response
from rotary.transports.emulation import emulate
from rotary.transports.stream import StreamTransport, run_emulated
from rotary.transports.uni_connect import BadConnectRequest, parse_connect_request

INPUT_DEADLINE = 20.0
"""Seconds one input may take before it counts as a hang (as libFuzzer's ``-timeout``)."""


class InProcessTarget(ServerTarget):
    """A whole-server target fed without a socket; ``answer`` is run under the input deadline."""

    def feed(self, data: bytes) -> None:
        self.harness.run(self._bounded(data))
        self.harness.trap.check()

    async def _bounded(self, data: bytes) -> None:
        baseline = asyncio.all_tasks()
        try:
            async with asyncio.timeout(INPUT_DEADLINE):
                await self.answer(data)
        except TimeoutError:
            raise ContractBroken(f"one input took longer than {INPUT_DEADLINE} s (a hang)") from None
        await self.harness.settle(baseline | self.kept_tasks())

    async def answer(self, data: bytes) -> None:
        raise NotImplementedError

    def kept_tasks(self) -> set[asyncio.Task[Any]]:
        """Tasks the target keeps across inputs (not left behind by the input that started them)."""
        return set()


def check_http(status: int, body: bytes, where: str, request: bytes = b"") -> None:
    """An HTTP answer: no 5xx unless it carries a mapped Centrifugo error (transport error mode),
    a 4xx with a message, and no error 100 anywhere in a JSON body unless Centrifugo answers the
    request with it too (``channels`` with a pattern its glob compiler refuses)."""
    text = body.decode("utf-8", "replace")
    parsed: Any = None
    if body[:1] in (b"{", b"["):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
    internal_expected = _refused_pattern(request)
    mapped = isinstance(parsed, dict) and parsed.get("code", 100) != 100
    if status >= 500 and not mapped and not (internal_expected and parsed is not None):
        raise ContractBroken(f"{where} answered {status}: {text[:200]!r}")
    if 400 <= status < 500 and not text.strip():
        raise ContractBroken(f"{where} answered {status} without a message")
    if not internal_expected and _has_internal_error(parsed):
        raise ContractBroken(f"{where} answered error 100: {text[:200]!r}")


def _refused_pattern(request: bytes) -> bool:
    """Whether a request holds a ``pattern`` that Centrifugo's glob compiler refuses: the
    ``channels`` method then answers error 100 in Centrifugo, and in rotary as there."""
    if b"pattern" not in request.lower():
        return False
    for line in [request, *request.splitlines()]:  # one JSON body, or the legacy API's lines
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if any_object(parsed, _has_refused_pattern):
            return True
    return False


def _has_refused_pattern(item: dict[str, Any]) -> bool:
    # Keys match case-insensitively, as in the Go JSON decoder Centrifugo uses.
    patterns = [v for k, v in item.items() if k.lower() == "pattern" and isinstance(v, str)]
    return any(refused_pattern(pattern) for pattern in patterns)


def _has_internal_error(value: Any) -> bool:
    """Whether a JSON answer holds ``{"error": {"code": 100}}`` at any depth (batch replies nest)."""

    def internal(item: dict[str, Any]) -> bool:
        error = item.get("error")
        return isinstance(error, dict) and error.get("code") == codes.ERROR_INTERNAL.code

    return any_object(value, internal)


def any_object(value: Any, predicate: Callable[[dict[str, Any]], bool]) -> bool:
    """Whether ``predicate`` holds for an object at any depth of a parsed JSON value (iteratively:
    fuzzed JSON nests deeper than Python's recursion limit)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if predicate(item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def refused_pattern(pattern: str) -> bool:
    try:
        compile_pattern(pattern)
    except InvalidPattern:
        return True
    return False


class HttpApi(InProcessTarget):
    """HTTP API bodies (``/api/<method>`` and the legacy ``/api``, the first byte picks which and the
    error mode) through the method's decode, the executor and the result's encoding."""

    name = "http_api"

    async def answer(self, data: bytes) -> None:
        selector = data[0] if data else 0
        method = API_PATHS[selector % len(API_PATHS)]
        transport_mode = (selector // len(API_PATHS)) % 2 == 1
        body = data[1:]
        executor = self.server.executor
        if method:
            response = await method_response(executor, method, body, transport_mode)
        else:
            response = await legacy_body_response(executor, self.server.node, body)
        payload = response.body if isinstance(response.body, bytes) else b""
        check_http(response.status, payload, f"POST /api/{method}", body)

    def seeds(self) -> list[bytes]:
        return HttpApiSocket(self.harness).seeds()


class GrpcContext:
    """What the servicer's handlers use of grpc's ServicerContext: the call's metadata and abort.

    grpc's own context object comes only with a served call; this one records how a handler ended
    the call, which is what a GRPC client would see.
    """

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise GrpcAborted(code, details, ())

    async def abort_with_status(self, status: grpc.Status) -> None:
        raise GrpcAborted(status.code, status.details, tuple(status.trailing_metadata))


class GrpcAborted(Exception):
    """A call ended with a non-OK status (grpc raises its own AbortError there)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, Any], ...]) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.trailing = trailing

    def error_code(self) -> int | None:
        """The code of the Centrifugo Error carried in the status details, if any."""
        for key, value in self.trailing:
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    error = api_pb2.Error()
                    if detail.Unpack(error):
                        return error.code
        return None


def internal_expected(message: Message) -> bool:
    """Error 100 where Centrifugo answers it too: ``Channels`` with a pattern its glob compiler
    refuses (as a request of its own or inside a batch)."""
    if isinstance(message, api_pb2.ChannelsRequest):
        return refused_pattern(message.pattern)
    if isinstance(message, api_pb2.BatchRequest):
        return any(
            command.HasField("channels") and refused_pattern(command.channels.pattern)
            for command in message.commands
        )
    return False


ALLOWED_ABORTS = frozenset({grpc.StatusCode.UNIMPLEMENTED})
"""Statuses a call may end with without a Centrifugo error: the PRO methods rotary does not serve."""


class GrpcApiBodies(InProcessTarget):
    """GRPC API request messages: the first byte picks the method and the error mode, the rest is the
    serialized request, deserialized and handled by the servicer as a served call would be."""

    name = "grpc_api"

    def setup(self) -> None:
        super().setup()
        handlers = GrpcApi(self.server.executor, self.server.config.grpc_api).handlers()
        self.rpcs = sorted(handlers.items())

    async def answer(self, data: bytes) -> None:
        selector = data[0] if data else 0
        rpc, handler = self.rpcs[selector % len(self.rpcs)]
        transport_mode = (selector // len(self.rpcs)) % 2 == 1
        try:
            message: Message = handler.request_deserializer(data[1:])
        except DecodeError:
            return  # grpc answers INTERNAL before any of rotary's code runs, as grpc-go does
        metadata = (("x-centrifugo-error-mode", "transport"),) if transport_mode else ()
        try:
            response = await handler.unary_unary(message, GrpcContext(metadata))
        except GrpcAborted as aborted:
            if aborted.code in ALLOWED_ABORTS:
                return
            code = aborted.error_code()
            if code is None or (code == codes.ERROR_INTERNAL.code and not internal_expected(message)):
                raise ContractBroken(f"{rpc} ended with {aborted}") from None
            return
        handler.response_serializer(response)
        error = getattr(response, "error", None)
        if error is not None and error.code == codes.ERROR_INTERNAL.code and not internal_expected(message):
            raise ContractBroken(f"{rpc} answered error 100: {error.message}")

    def seeds(self) -> list[bytes]:
        names = [rpc for rpc, _ in self.rpcs]
        requests = {
            "Publish": api_pb2.PublishRequest(channel="news", data=b'{"a":1}', tags={"k": "1"}),
            "Broadcast": api_pb2.BroadcastRequest(channels=["news", "chat:a"], data=b"[1]"),
            "Subscribe": api_pb2.SubscribeRequest(user="fuzzer", channel="news"),
            "Presence": api_pb2.PresenceRequest(channel="news"),
            "History": api_pb2.HistoryRequest(channel="news", limit=10, reverse=True),
            "Info": api_pb2.InfoRequest(),
            "Channels": api_pb2.ChannelsRequest(pattern="*"),
            "Disconnect": api_pb2.DisconnectRequest(user="fuzzer"),
        }
        return [bytes([names.index(rpc)]) + request.SerializeToString() for rpc, request in requests.items()]


SESSION_PLACEHOLDER = b"@SESSION@"
"""Stands for the live emulated session's id in emulation inputs."""


class NullSocket:
    """The byte sink of the live emulated session: takes every write (the session's replies are not
    what this target checks; the client's close codes are)."""

    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


class RecordingStreamTransport(StreamTransport):
    """The emulated stream's transport, keeping the disconnect its client ended with."""

    closed_with: codes.Disconnect | None = None

    def close(self, disconnect: codes.Disconnect) -> int:
        self.closed_with = self.closed_with or disconnect
        return super().close(disconnect)


class Emulation(InProcessTarget):
    """``POST /emulation`` bodies through ``emulate``, read as JSON and as Protobuf: to no session,
    to a node that is not live, or to a live emulated session of this node (``@SESSION@``), whose
    client then runs the commands. Answers 204, 400 or 404 with a message; never a 5xx."""

    name = "emulation"

    def setup(self) -> None:
        super().setup()
        self.live: dict[ProtocolType, tuple[Client, RecordingStreamTransport, asyncio.Task[None]]] = {}

    def close(self) -> None:
        self.harness.run(self._end_sessions())
        super().close()

    async def _end_sessions(self) -> None:
        for client, _, task in self.live.values():
            client.close(codes.DISCONNECT_CONNECTION_CLOSED)
            await task
        await asyncio.sleep(0)

    async def _session(self, protocol: ProtocolType) -> tuple[Client, RecordingStreamTransport]:
        """The live session of ``protocol``, opened again when an input ended it."""
        live = self.live.get(protocol)
        if live is not None and not live[0].closed:
            return live[0], live[1]
        if live is not None:
            await live[2]
        transport = RecordingStreamTransport("http_stream", protocol, bytes, NullSocket(), chunked=False)
        client = Client(self.server.node, transport)
        connect = pb.Command(id=1, connect=pb.ConnectRequest(token=CONNECT_TOKEN, name="fuzz"))
        first = (
            orjson.dumps({"id": 1, "connect": {"token": CONNECT_TOKEN, "name": "fuzz"}})
            if protocol is ProtocolType.JSON
            else delimited(connect.SerializeToString())
        )
        task = asyncio.get_running_loop().create_task(run_emulated(client, transport, first))
        while client.session_id is None or client.session_id not in self.server.node.emulation_sessions:
            await asyncio.sleep(0)
        self.live[protocol] = (client, transport, task)
        return client, transport

    def kept_tasks(self) -> set[asyncio.Task[Any]]:
        """The live sessions outlive one input (an input's frames may end one during the next
        input, which then opens it again)."""
        return {task for _, _, task in self.live.values()}

    async def answer(self, data: bytes) -> None:
        node = self.server.node.id.encode()
        for protocol in (ProtocolType.JSON, ProtocolType.PROTOBUF):
            client, transport = await self._session(protocol)
            body = data.replace(NODE_PLACEHOLDER, node).replace(
                SESSION_PLACEHOLDER, client.session_id.encode()
            )
            status, text = await emulate(self.server.node, body, protocol is ProtocolType.PROTOBUF)
            if status not in (204, 400, 404) or (status != 204 and not text):
                raise ContractBroken(f"emulation answered {status} {text!r}")
            for _ in range(3):  # the session's client runs the delivered frames
                await asyncio.sleep(0)
            ended = transport.closed_with
            if ended is not None and ended.code == codes.DISCONNECT_SERVER_ERROR.code:
                raise ContractBroken("the live session was closed with 3004 (internal server error)")

    def seeds(self) -> list[bytes]:
        node, session = NODE_PLACEHOLDER.decode(), SESSION_PLACEHOLDER.decode()
        command = orjson.dumps({"id": 2, "subscribe": {"channel": "news"}}).decode()
        publish = orjson.dumps({"id": 3, "publish": {"channel": "news", "data": {"a": 1}}}).decode()
        return [
            orjson.dumps({"node": node, "session": "missing", "data": command}),
            orjson.dumps({"node": "other", "session": "x", "data": command}),
            orjson.dumps({"node": node, "session": session, "data": command + "\n" + publish}),
        ]


class StreamConnect(ClientFrames):
    """The first request of the streaming endpoints (the first byte picks which): the
    unidirectional connect request through its parser and the Client's unidirectional connect, the
    bidirectional HTTP-streaming body as the session's first frames. A refusal is 400 with a message
    (unparseable) or a client-protocol disconnect, never 3004 or error 100."""

    name = "stream_connect"
    protocol = ProtocolType.JSON

    def feed(self, data: bytes) -> None:
        self.harness.run(self._bounded(data))
        self.harness.trap.check()

    async def _bounded(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(INPUT_DEADLINE):
                await self._connect(data)
        except TimeoutError:
            raise ContractBroken(f"one input took longer than {INPUT_DEADLINE} s (a hang)") from None

    async def _connect(self, data: bytes) -> None:
        path = UNI_PATHS[data[0] % len(UNI_PATHS)] if data else UNI_PATHS[0]
        body = data[1:]
        if path != UNI_PATHS[0]:
            await self.first_frames(body)
            return
        try:
            request = parse_connect_request(body)
        except BadConnectRequest as exc:
            if not str(exc):
                raise ContractBroken("a connect request was refused without a message") from None
            return
        baseline = asyncio.all_tasks()
        transport = RecordingTransport(ProtocolType.JSON)
        transport.unidirectional = True
        client = Client(self.server.node, transport)
        failure = await client.connect_unidirectional(request)
        if failure is not None and failure.code in (
            codes.ERROR_INTERNAL.code,
            codes.DISCONNECT_SERVER_ERROR.code,
        ):
            raise ContractBroken(f"a connect request was refused with {failure.code} ({failure})")
        for _ in range(3):
            await asyncio.sleep(0)
        client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        await self.harness.settle(baseline)
        if self.server.node.hub.clients:
            raise ContractBroken("a closed client is still registered in the hub")

    async def first_frames(self, body: bytes) -> None:
        """The bidirectional stream's body: the connect command (and any after it) of a new client."""
        baseline = asyncio.all_tasks()
        transport = RecordingTransport(ProtocolType.JSON)
        client = Client(self.server.node, transport)
        await client.handle_frame(body)
        for _ in range(3):
            await asyncio.sleep(0)
        client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        await self.harness.settle(baseline)
        self.check_replies(transport)

    def seeds(self) -> list[bytes]:
        connect = orjson.dumps({"token": CONNECT_TOKEN, "subs": {"news": {}}})
        command = orjson.dumps({"id": 1, "connect": {"token": CONNECT_TOKEN}})
        return [bytes([0]) + connect, bytes([1]) + command]
