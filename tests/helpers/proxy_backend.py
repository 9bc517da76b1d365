"""Real proxy backends for tests: an aiohttp app and a grpc.aio CentrifugoProxy server, one script.

A test sets ``backend.answers[kind]`` (kind: connect, refresh, subscribe, publish, sub_refresh, rpc)
to a function of the request (a JSON object, as Centrifugo's HTTP proxy posts it) returning the
response object, or a ``Status`` (HTTP status / GRPC abort), ``Hang`` (never answer) or raw bytes
(a malformed HTTP body). Both servers listen on free ports of 127.0.0.1 and record every request
with its headers (or metadata). See https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import orjson
from aiohttp import web
from google.protobuf.message import Message

from helpers.certs import Issued
from helpers.env import free_port
from rotary.server.proxy import codec, messages
from rotary.server.proxy._pb.proxy_pb2 import Publication, StreamSubscribeRequest, StreamSubscribeResponse

KINDS = {
    "connect": ("Connect", messages.ConnectRequest, messages.ConnectResponse),
    "refresh": ("Refresh", messages.RefreshRequest, messages.RefreshResponse),
    "subscribe": ("Subscribe", messages.SubscribeRequest, messages.SubscribeResponse),
    "publish": ("Publish", messages.PublishRequest, messages.PublishResponse),
    "sub_refresh": ("SubRefresh", messages.SubRefreshRequest, messages.SubRefreshResponse),
    "rpc": ("RPC", messages.RPCRequest, messages.RPCResponse),
}


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status (GRPC: abort with UNAVAILABLE)."""

    code: int


class Hang:
    """Never answer (the proxy's timeout must fire)."""


Answer = Callable[[dict[str, Any]], Any]


@dataclass
class Stream:
    """One subscribe stream: put JSON values into ``outgoing`` to publish them, None to end it."""

    request: Message
    outgoing: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    received: list[Any] = field(default_factory=list)
    """Publications the subscriber sent into a bidirectional stream."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Seen:
    kind: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class ProxyBackend:
    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    http_port: int = 0
    grpc_port: int = 0
    streams: list[Stream] = field(default_factory=list)
    """Subscribe streams opened (kind "subscribe_stream" answers their first message)."""
    tls: Issued | None = None
    """Serve HTTPS and GRPC over TLS with this certificate."""
    _runner: web.AppRunner | None = None
    _grpc: grpc.aio.Server | None = None

    def http_endpoint(self, kind: str) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}/{kind}"

    @property
    def grpc_endpoint(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def endpoint(self, over: str, kind: str) -> str:
        """The endpoint a proxy of ``kind`` uses ``over`` "http" or "grpc"."""
        return self.http_endpoint(kind) if over == "http" else self.grpc_endpoint

    def requests(self, kind: str) -> list[Seen]:
        return [s for s in self.seen if s.kind == kind]

    async def _answer(self, kind: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        self.seen.append(Seen(kind, body, headers))
        answer = self.answers.get(kind, lambda _: {"result": {}})(body)
        if isinstance(answer, Hang):
            await asyncio.sleep(3600)
        return answer

    async def _http(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:  # recorded all the same: a test may check none was sent
            self.seen.append(Seen(kind, {"unparsable": raw.decode(errors="replace")}, headers))
            return web.Response(status=400, text="body is not JSON")
        answer = await self._answer(kind, body, headers)
        if isinstance(answer, Status):
            return web.Response(status=answer.code, text="backend says no")
        if isinstance(answer, bytes):
            return web.Response(body=answer, content_type="application/json")
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    def _grpc_handler(self, kind: str) -> grpc.RpcMethodHandler:
        _, request_type, response_type = KINDS[kind]

        async def handle(request: Message, context: grpc.aio.ServicerContext) -> Message:
            headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            body = orjson.loads(codec.encode_request(request))
            answer = await self._answer(kind, body, headers)
            if isinstance(answer, (Status, bytes)):
                await context.abort(grpc.StatusCode.UNAVAILABLE, "backend says no")
            return codec.decode_response(orjson.dumps(answer), response_type)

        return grpc.unary_unary_rpc_method_handler(
            handle, request_deserializer=request_type.FromString, response_serializer=_serialize
        )

    def _stream_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        async def run(stream: Stream, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            body = orjson.loads(codec.encode_request(stream.request))
            answer = await self._answer("subscribe_stream", body, headers)
            yield StreamSubscribeResponse(
                subscribe_response=codec.decode_response(orjson.dumps(answer), messages.SubscribeResponse)
            )
            while (item := await stream.outgoing.get()) is not None:
                yield StreamSubscribeResponse(publication=Publication(data=orjson.dumps(item)))

        async def unidirectional(request: Message, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            stream = Stream(request)
            self.streams.append(stream)
            try:
                async for message in run(stream, context):
                    yield message
            finally:
                stream.ended.set()

        async def bidirectional(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            first = await anext(requests)
            stream = Stream(first.subscribe_request)
            self.streams.append(stream)

            async def receive() -> None:
                async for message in requests:
                    stream.received.append(orjson.loads(message.publication.data))
                    await stream.outgoing.put({"echo": stream.received[-1]})

            receiving = asyncio.ensure_future(receive())
            try:
                async for message in run(stream, context):
                    yield message
            finally:
                receiving.cancel()
                stream.ended.set()

        return {
            "SubscribeUnidirectional": grpc.unary_stream_rpc_method_handler(
                unidirectional,
                request_deserializer=messages.SubscribeRequest.FromString,
                response_serializer=_serialize,
            ),
            "SubscribeBidirectional": grpc.stream_stream_rpc_method_handler(
                bidirectional,
                request_deserializer=StreamSubscribeRequest.FromString,
                response_serializer=_serialize,
            ),
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{kind}", self._http)
        # A request still hanging (``Hang``) when the backend stops is cancelled with its aborted
        # connection; without it the runner's cleanup waits 60 s for the request to finish.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        self.http_port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.http_port, ssl_context=self._ssl()).start()
        self._grpc = grpc.aio.server()
        handlers = {method: self._grpc_handler(kind) for kind, (method, _, _) in KINDS.items()}
        handlers.update(self._stream_handlers())
        self._grpc.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(messages.SERVICE, handlers),)
        )
        address = f"127.0.0.1:{free_port()}"
        if self.tls is None:
            self.grpc_port = self._grpc.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(self.tls.key_pem, self.tls.cert_pem)])
            self.grpc_port = self._grpc.add_secure_port(address, credentials)
        await self._grpc.start()

    def _ssl(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as directory:
            cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
            cert.write_bytes(self.tls.cert_pem)
            key.write_bytes(self.tls.key_pem)
            context.load_cert_chain(cert, key)
        return context

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(None)
        if self._runner is not None:
            # Closing a TLS connection gracefully waits for the peer's close_notify; a test's loop
            # may end first, leaving the socket to be garbage-collected (a ResourceWarning) during
            # a later test. Aborting closes each socket at once: the backend is going away anyway.
            server = self._runner.server
            for handler in server.connections if server is not None else ():
                if handler.transport is not None:
                    handler.transport.abort()
            await self._runner.cleanup()


@contextlib.asynccontextmanager
async def running_backend(tls: Issued | None = None) -> AsyncIterator[ProxyBackend]:
    """A started backend, stopped on exit."""
    server = ProxyBackend(tls=tls)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
