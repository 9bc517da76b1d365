"""The fuzz targets: each feeds one input to a real rotary component and checks its contract.

A target is built once per process (``setup``) and then called once per input (``feed``). Every
target also offers ``seeds``: valid inputs that start its corpus, so the fuzzer begins from the
shapes rotary accepts and mutates them into the ones it must refuse.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import tempfile
from collections.abc import Iterator
from typing import Any, ClassVar

import orjson
from aiohttp import ClientSession, ClientTimeout, web
from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError

from reliability.fuzz.harness import ContractBroken, Harness, RecordingTransport, config_from
from rotary.node.client import Client
from rotary.protocol import codes, pb, tags_filter
from rotary.protocol.codec import ProtocolType, codec_for
from rotary.protocol.protobuf_codec import delimited
from rotary.server.api.schema import METHODS
from rotary.server.app import Server, build_server
from rotary.server.config import ConfigError
from rotary.server.config.load import load_config
from rotary.server.tokens import TokenError, TokenVerifier
from rotary.transports.uni_connect import BadConnectRequest, parse_connect_request

SECRET = "reliability-fuzz-secret"
API_KEY = "reliability-fuzz-key"

SERVER_CONFIG: dict[str, Any] = {
    "client": {
        "token": {"hmac_secret_key": SECRET},
        "allowed_origins": ["http://allowed.example"],
        "subscribe_to_user_personal_channel": {"enabled": True},
    },
    "http_api": {"key": API_KEY},
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    "uni_http_stream": {"enabled": True},
    "uni_sse": {"enabled": True},
    "channel": {
        "without_namespace": {
            "allow_subscribe_for_client": True,
            "allow_publish_for_client": True,
            "allow_presence_for_client": True,
            "allow_history_for_client": True,
            "presence": True,
            "join_leave": True,
            "history_size": 10,
            "history_ttl": "30s",
            "force_recovery": True,
            "allow_tags_filter": True,
            "allowed_delta_types": ["fossil"],
            "delta_publish": True,
        },
        "namespaces": [
            {"name": "chat", "allow_subscribe_for_client": True, "history_size": 5, "history_ttl": "5s"},
            {"name": "private", "history_size": 5, "history_ttl": "5s"},
        ],
    },
    "rpc": {"without_namespace": {}},
}
"""A server with every client-reachable feature on, so inputs can reach every command handler."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: bytes, payload: bytes, secret: str = SECRET) -> str:
    """A JWT over exactly these header and payload bytes, signed with ``secret``."""
    signing_input = f"{b64url(header)}.{b64url(payload)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


CONNECT_TOKEN = hs256(b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"fuzzer"}')


class Target:
    """One fuzz target: ``setup`` once, then ``feed`` per input; ``feed`` raises only ContractBroken."""

    name: ClassVar[str]
    corpus: ClassVar[str] = ""
    """The corpus directory it shares with another target (reliability/corpus/<corpus>), else its name."""
    long_run: ClassVar[bool] = True
    """False for a target too slow for the long run, fuzzed only by the suite's short run."""

    @classmethod
    def corpus_name(cls) -> str:
        return cls.corpus or cls.name

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def setup(self) -> None:
        """Builds what every input shares."""

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def seeds(self) -> list[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        """Releases what ``setup`` built (the suite replays every target in one process)."""


class ServerTarget(Target):
    """A target that needs the whole server (node, hooks, HTTP app) built from SERVER_CONFIG."""

    server: Server

    def setup(self) -> None:
        self.server = build_server(config_from(SERVER_CONFIG))
        self.harness.run(self.server.node.start())

    def close(self) -> None:
        self.harness.run(self.server.node.shutdown(0))


# --- the client protocol ---------------------------------------------------------------------------

CLIENT_SEED_COMMANDS: list[dict[str, Any]] = [
    {"id": 2, "subscribe": {"channel": "news"}},
    {"id": 2, "subscribe": {"channel": "news", "recover": True, "offset": 1, "epoch": "x"}},
    {"id": 2, "subscribe": {"channel": "news", "delta": "fossil"}},
    {"id": 2, "subscribe": {"channel": "news", "tf": {"key": "k", "cmp": "eq", "val": "1"}}},
    {"id": 2, "subscribe": {"channel": "chat:room", "positioned": True}},
    {"id": 2, "subscribe": {"channel": "private:x", "token": CONNECT_TOKEN}},
    {"id": 2, "subscribe": {"channel": "#fuzzer"}},
    {"id": 3, "publish": {"channel": "news", "data": {"text": "hi"}}},
    {"id": 4, "presence": {"channel": "news"}},
    {"id": 5, "presence_stats": {"channel": "news"}},
    {"id": 6, "history": {"channel": "news", "limit": -1, "since": {"offset": 0, "epoch": ""}}},
    {"id": 7, "rpc": {"method": "x", "data": {"a": [1, 2.5, "x", None]}}},
    {"id": 8, "refresh": {"token": CONNECT_TOKEN}},
    {"id": 9, "sub_refresh": {"channel": "news", "token": CONNECT_TOKEN}},
    {"id": 10, "unsubscribe": {"channel": "news"}},
    {"id": 11, "send": {"data": {"x": 1}}},
    {},
]


class ClientFrames(ServerTarget):
    """Frames of a connected client (JSON or Protobuf), through the real Client, hooks and node.

    Contract: every command is answered or the connection closes with a client-protocol code; no
    error 100 and no disconnect 3004 (those mean rotary failed, not the input); nothing logged at
    ERROR; the connection's end leaves no task and no registration behind.
    """

    protocol: ClassVar[ProtocolType]

    def setup(self) -> None:
        super().setup()
        self.codec = codec_for(self.protocol)
        self.connect = self.frame({"id": 1, "connect": {"token": CONNECT_TOKEN, "name": "fuzz"}})

    def frame(self, command: dict[str, Any]) -> bytes:
        if self.protocol is ProtocolType.JSON:
            return orjson.dumps(command)
        message = pb.Command()
        body = orjson.loads(orjson.dumps(command))
        for request in body.values():
            if isinstance(request, dict) and "data" in request:
                request["data"] = base64.b64encode(orjson.dumps(request["data"])).decode()
        ParseDict(body, message)
        return delimited(message.SerializeToString())

    def seeds(self) -> list[bytes]:
        frames = [self.frame(command) for command in CLIENT_SEED_COMMANDS]
        batch = b"\n".join(frames) if self.protocol is ProtocolType.JSON else b"".join(frames)
        return [*frames, batch]

    def feed(self, data: bytes) -> None:
        self.harness.run(self._feed(data))
        self.harness.trap.check()

    async def _feed(self, data: bytes) -> None:
        baseline = asyncio.all_tasks()
        transport = RecordingTransport(self.protocol)
        client = Client(self.server.node, transport)
        await client.handle_frame(self.connect)
        if transport.closed_with is not None:
            raise ContractBroken(f"the seed connect failed: {transport.closed_with}")
        await client.handle_frame(data)
        for _ in range(3):  # the hub delivers queued publications on the next passes
            await asyncio.sleep(0)
        client.close(codes.DISCONNECT_CONNECTION_CLOSED)
        await self.harness.settle(baseline)
        self.check_replies(transport)

    def check_replies(self, transport: RecordingTransport) -> None:
        """No 3004 and no error 100 (those mean rotary failed, not the input); nothing left in the hub."""
        if (
            transport.closed_with is not None
            and transport.closed_with.code == codes.DISCONNECT_SERVER_ERROR.code
        ):
            raise ContractBroken("the input ended its connection with 3004 (internal server error)")
        for payload in transport.payloads:
            for reply_id, code, message in self.reply_errors(payload):
                if code == codes.ERROR_INTERNAL.code:
                    raise ContractBroken(f"command {reply_id} got error 100: {message}")
        if self.server.node.hub.clients:
            raise ContractBroken("a closed client is still registered in the hub")

    def reply_errors(self, payload: bytes) -> Iterator[tuple[int, int, str]]:
        """(id, code, message) of each reply in a payload that carries an error.

        JSON lines are read with orjson rather than rotary's codec: this runs on every reply of every
        input, and reading each reply into protobuf with the instrumented codec took a tenth of an
        input's time. A line orjson refuses (nested deeper than it reads) goes through the codec.
        """
        if self.protocol is ProtocolType.PROTOBUF:
            replies = self.codec.decode(payload, pb.Reply)
        else:
            replies = []
            for line in payload.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    parsed = orjson.loads(line)
                except orjson.JSONDecodeError:
                    replies.extend(self.codec.decode(line, pb.Reply))
                    continue
                error = parsed.get("error") if isinstance(parsed, dict) else None
                if isinstance(error, dict):
                    yield parsed.get("id", 0), error.get("code", 0), error.get("message", "")
        for reply in replies:
            if reply.HasField("error"):
                yield reply.id, reply.error.code, reply.error.message


class ClientJson(ClientFrames):
    name = "client_json"
    protocol = ProtocolType.JSON


class ClientProtobuf(ClientFrames):
    name = "client_protobuf"
    protocol = ProtocolType.PROTOBUF


# --- HTTP endpoints --------------------------------------------------------------------------------


class HttpTarget(ServerTarget):
    """Requests to the real aiohttp server on a loopback port.

    Contract: never a 5xx; a 4xx carries a message; nothing logged at ERROR. These check what the
    in-process targets of the same bodies (endpoints.py) cannot: the route, the HTTP method and key
    checks, the body limit (413) and the framing of the answer. At a hundred inputs a second they
    are fuzzed by the suite's short run only.
    """

    long_run = False

    def setup(self) -> None:
        super().setup()
        self.runner = web.AppRunner(self.server.external)
        self.harness.run(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.harness.run(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        self.session = self.harness.run(self._session())

    async def _session(self) -> ClientSession:
        return ClientSession(timeout=ClientTimeout(total=10))

    def close(self) -> None:
        self.harness.run(self.session.close())
        super().close()
        self.harness.run(self.runner.cleanup())

    def request(self, data: bytes) -> tuple[str, str, dict[str, str], bytes]:
        """method, path, headers and body of the request an input stands for."""
        raise NotImplementedError

    def feed(self, data: bytes) -> None:
        method, path, headers, body = self.request(data)
        status, text = self.harness.run(self._send(method, path, headers, body))
        self.harness.trap.check()
        if status >= 500:
            raise ContractBroken(f"{method} {path} answered {status}: {text[:200]!r}")
        if 400 <= status < 500 and not text.strip():
            raise ContractBroken(f"{method} {path} answered {status} without a message")

    async def _send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        async with self.session.request(method, self.base + path, headers=headers, data=body) as response:
            if response.content_type in ("text/event-stream", "application/octet-stream"):
                return response.status, "stream"
            return response.status, await response.text(errors="replace")


API_PATHS = ["", *METHODS]
"""The legacy ``/api`` endpoint, then one per method, picked by an input's first byte."""


class HttpApiSocket(HttpTarget):
    """``POST /api/<method>`` and the legacy ``POST /api``: the first byte picks the path."""

    name = "http_api_socket"
    corpus = "http_api"

    def request(self, data: bytes) -> tuple[str, str, dict[str, str], bytes]:
        name = API_PATHS[data[0] % len(API_PATHS)] if data else ""
        path = f"/api/{name}" if name else "/api"
        return "POST", path, {"X-API-Key": API_KEY}, data[1:]

    def seeds(self) -> list[bytes]:
        bodies = {
            "publish": {"channel": "news", "data": {"text": "hi"}, "tags": {"k": "1"}},
            "broadcast": {"channels": ["news", "chat:a"], "data": [1, 2, {"a": 1e400}]},
            "subscribe": {"user": "fuzzer", "channel": "news", "recover_since": {"offset": 1, "epoch": "e"}},
            "unsubscribe": {"user": "fuzzer", "channel": "news"},
            "disconnect": {"user": "fuzzer", "disconnect": {"code": 4000, "reason": "x"}},
            "presence": {"channel": "news"},
            "history": {"channel": "news", "limit": 10, "reverse": True},
            "history_remove": {"channel": "news"},
            "info": {},
            "batch": {"commands": [{"publish": {"channel": "a", "data": {}}}], "parallel": True},
            "channels": {"pattern": "*"},
            "refresh": {"user": "fuzzer", "expire_at": 1},
        }
        seeds = []
        for index, name in enumerate(API_PATHS):
            if name in bodies:
                seeds.append(bytes([index]) + orjson.dumps(bodies[name]))
        legacy = b'{"method":"publish","params":{"channel":"a","data":{}}}\n{"method":"info","params":{}}'
        seeds.append(bytes([0]) + legacy)
        return seeds


NODE_PLACEHOLDER = b"@NODE@"
"""Stands for this process's node id in emulation inputs, so kept inputs reach the live node."""


class EmulationSocket(HttpTarget):
    """``POST /emulation`` bodies (``{"node", "session", "data"}``), to no live session or to a
    live one's node: 204, 400, 404 or 413, never a 5xx."""

    name = "emulation_socket"
    corpus = "emulation"

    def request(self, data: bytes) -> tuple[str, str, dict[str, str], bytes]:
        body = data.replace(NODE_PLACEHOLDER, self.server.node.id.encode())
        return "POST", "/emulation", {"Origin": "http://allowed.example"}, body

    def seeds(self) -> list[bytes]:
        node = NODE_PLACEHOLDER.decode()
        command = orjson.dumps({"id": 2, "subscribe": {"channel": "news"}}).decode()
        return [
            orjson.dumps({"node": node, "session": "missing", "data": command}),
            orjson.dumps({"node": "other", "session": "x", "data": command}),
            orjson.dumps({"node": node, "session": "x", "data": base64.b64encode(b"\x02\x08\x01").decode()}),
        ]


UNI_PATHS = ["/connection/uni_http_stream", "/connection/http_stream"]


class StreamConnectSocket(HttpTarget):
    """The connect request of streaming endpoints in a POST body (unidirectional HTTP-streaming and
    bidirectional HTTP-streaming): a refusal is a 4xx or a disconnect in the stream, never a 5xx."""

    name = "stream_connect_socket"
    corpus = "stream_connect"

    def request(self, data: bytes) -> tuple[str, str, dict[str, str], bytes]:
        path = UNI_PATHS[data[0] % len(UNI_PATHS)] if data else UNI_PATHS[0]
        return "POST", path, {"Origin": "http://allowed.example"}, data[1:]

    async def _send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """A stream that opened is read until its first chunk, then dropped by the client."""
        async with self.session.request(method, self.base + path, headers=headers, data=body) as response:
            if response.status == 200:
                await asyncio.wait_for(response.content.readany(), 10)
                return 200, "stream"
            return response.status, await response.text(errors="replace")

    def seeds(self) -> list[bytes]:
        connect = orjson.dumps({"token": CONNECT_TOKEN, "subs": {"news": {}}})
        command = orjson.dumps({"id": 1, "connect": {"token": CONNECT_TOKEN}})
        return [bytes([0]) + connect, bytes([1]) + command]


class UniConnectRequest(Target):
    """The parser of a unidirectional connect request (first WebSocket message, body, cf_connect)."""

    name = "uni_connect"

    def feed(self, data: bytes) -> None:
        try:
            parse_connect_request(data)
        except BadConnectRequest:
            pass

    def seeds(self) -> list[bytes]:
        return [orjson.dumps({"token": CONNECT_TOKEN, "subs": {"a": {"recover": True, "offset": 3}}}), b"{}"]


# --- tokens, filters, configuration ----------------------------------------------------------------


class Jwt(Target):
    """Connection and subscription JWTs. The first byte picks the form: raw token text, a payload
    signed with the server's key (so that malformed claims reach the claims parser), or a signed
    header and payload split at the first newline. Contract: claims, or TokenError."""

    name = "jwt"

    def setup(self) -> None:
        config = config_from(SERVER_CONFIG)
        self.verifier = TokenVerifier(config.client.token, config.client.subscription_token)

    def token(self, data: bytes) -> str:
        mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
        if mode == 0:
            return rest.decode("utf-8", "replace")
        if mode == 1:
            return hs256(b'{"alg":"HS256","typ":"JWT"}', rest)
        header, _, payload = rest.partition(b"\n")
        return hs256(header, payload)

    def feed(self, data: bytes) -> None:
        token = self.token(data)
        for verify in (self.verifier.verify_connect_token, self.verifier.verify_subscription_token):
            try:
                self.harness.run(verify(token))
            except TokenError:
                pass

    def seeds(self) -> list[bytes]:
        claims = [
            {"sub": "u", "exp": 4102444800, "info": {"a": 1}, "channels": ["x"], "subs": {"y": {}}},
            {"sub": "u", "channel": "news", "client": "c", "override": {"presence": {"value": True}}},
            {"sub": "u", "aud": ["a"], "iss": "i", "nbf": 1, "iat": 1, "expire_at": 0, "meta": [1]},
        ]
        seeds = [bytes([1]) + orjson.dumps(c) for c in claims]
        seeds.append(bytes([0]) + CONNECT_TOKEN.encode())
        seeds.append(bytes([2]) + b'{"alg":"none"}\n{"sub":"u"}')
        return seeds


class TagsFilter(Target):
    """A subscription's tags filter (Protobuf FilterNode), validated, compiled and run on tags."""

    name = "tags_filter"

    TAGS: ClassVar[list[dict[str, str]]] = [{}, {"k": "1"}, {"k": "2", "n": "10.5"}, {"n": "-3e2"}]

    def feed(self, data: bytes) -> None:
        node = pb.FilterNode()
        try:
            node.ParseFromString(data)
        except DecodeError:
            return
        try:
            tags_filter.validate(node)
        except tags_filter.InvalidTagsFilter:
            return
        matcher = tags_filter.compile_filter(node)
        for tags in self.TAGS:
            matcher(tags)

    def seeds(self) -> list[bytes]:
        leaf = pb.FilterNode(key="k", cmp="eq", val="1")
        numeric = pb.FilterNode(key="n", cmp="gt", val="5")
        member = pb.FilterNode(key="k", cmp="in", vals=["1", "2"])
        both = pb.FilterNode(op="and", nodes=[leaf, numeric])
        either = pb.FilterNode(op="or", nodes=[both, pb.FilterNode(op="not", nodes=[member])])
        return [node.SerializeToString() for node in (leaf, numeric, member, both, either)]


CONFIG_EXTENSIONS = [".json", ".yaml", ".toml"]


class ConfigFile(Target):
    """A config file (the first byte picks JSON, YAML or TOML), loaded and validated as at start.
    Contract: a Config, or a ConfigError naming the problems."""

    name = "config_file"

    def setup(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="rotary-fuzz-config-")

    def close(self) -> None:
        os.rmdir(self.directory)

    def feed(self, data: bytes) -> None:
        extension = CONFIG_EXTENSIONS[data[0] % len(CONFIG_EXTENSIONS)] if data else ".json"
        path = os.path.join(self.directory, "config" + extension)
        with open(path, "wb") as file:
            file.write(data[1:])
        try:
            load_config(path, {})
        except ConfigError:
            pass
        finally:
            # A new file per input: rewriting one in place makes ext4 flush it at each close
            # (its auto_da_alloc), which took most of an input's time.
            os.unlink(path)

    def seeds(self) -> list[bytes]:
        yaml_text = b"client:\n  token:\n    hmac_secret_key: x\nchannel:\n  namespaces:\n    - name: a\n"
        toml_text = b'[client.token]\nhmac_secret_key = "x"\n[[channel.namespaces]]\nname = "a"\n'
        return [bytes([0]) + orjson.dumps(SERVER_CONFIG), bytes([1]) + yaml_text, bytes([2]) + toml_text]


class ConfigEnv(Target):
    """Environment variables (``NAME=value`` lines) applied over the defaults and validated."""

    name = "config_env"

    def feed(self, data: bytes) -> None:
        environ: dict[str, str] = {}
        for line in data.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition("=")
            if name and "\x00" not in name:
                environ[name] = value
        try:
            load_config("", environ)
        except ConfigError:
            pass

    def seeds(self) -> list[bytes]:
        return [
            b'CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY=x\nCENTRIFUGO_CHANNEL_NAMESPACES=[{"name":"a"}]',
            b"CENTRIFUGO_CLIENT_PING_INTERVAL=1s\nCENTRIFUGO_CLIENT_ALLOWED_ORIGINS=a b",
            b"CENTRIFUGO_HTTP_SERVER_PORT=99999\nCENTRIFUGO_LOG_LEVEL=debug",
        ]
