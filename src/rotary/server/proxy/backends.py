"""The two ways to reach a backend: a JSON POST over HTTP and a unary call over GRPC (the latter
in grpc_backend.py, imported only for a GRPC endpoint: grpcio is the ``grpc`` extra).

Both answer a request message with a response message or raise ``Unanswered`` (timeout, refused
connection, an HTTP status other than 200 without a transform, a malformed body, a GRPC error);
what the client then sees is the caller's decision, as in Centrifugo. See
https://centrifugal.dev/docs/server/proxy#http-proxy and https://centrifugal.dev/docs/server/proxy#grpc-proxy
"""

from __future__ import annotations

import ssl
from typing import Protocol, TypeVar

import aiohttp
from google.protobuf.message import Message

from rotary.node.metrics import Metrics
from rotary.server.config.schema import ProxyConfig, TLSConfig
from rotary.server.pem import read_pem
from rotary.server.proxy import codec
from rotary.server.proxy.headers import CallContext, forwarded
from rotary.server.proxy.messages import Disconnect, Error
from rotary.server.tracing import inject_trace

M = TypeVar("M", bound=Message)

MAX_IDLE_PER_HOST = 255
"""Connections kept open to one backend host, as Centrifugo's HTTP client keeps."""


class Unanswered(Exception):
    """The backend gave no usable answer."""


class Backend(Protocol):
    """One proxy endpoint."""

    config: ProxyConfig
    name: str
    """The proxy's name as metrics and traces label it ("default" for the unnamed ones)."""
    protocol: str
    """"http" or "grpc", the metrics' protocol label."""
    metrics: Metrics | None
    """The node's counts when Prometheus is on (set by the registry)."""

    async def call(self, method: str, request: Message, response_type: type[M], context: CallContext) -> M:
        """``method`` is the CentrifugoProxy method name (Connect, Subscribe...)."""
        ...

    async def close(self) -> None: ...


def client_tls(tls: TLSConfig) -> ssl.SSLContext:
    """TLS towards a backend: its CA (or the system's), an optional client certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.server_ca_pem:
        context.load_verify_locations(cadata=read_pem(tls.server_ca_pem).decode())
    if tls.cert_pem and tls.key_pem:
        _load_pair(context, read_pem(tls.cert_pem), read_pem(tls.key_pem))
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _load_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """ssl loads a certificate pair only from files; a temporary directory holds them for the call."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        context.load_cert_chain(cert_path, key_path)


class HttpBackend:
    """POSTs JSON to ``endpoint``; one aiohttp session per proxy, opened on first use."""

    protocol = "http"

    def __init__(self, config: ProxyConfig, name: str = "default") -> None:
        self.config = config
        self.name = name
        self.metrics: Metrics | None = None
        self._session: aiohttp.ClientSession | None = None
        self._transforms = {rule.status_code: rule for rule in config.http.status_to_code_transforms}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            tls = self.config.http.tls
            context: ssl.SSLContext | bool = client_tls(tls) if tls.enabled else True
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=MAX_IDLE_PER_HOST, ssl=context)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.config.timeout)
            )
        return self._session

    async def call(self, method: str, request: Message, response_type: type[M], context: CallContext) -> M:
        headers = forwarded(self.config, context, self.config.http.static_headers)
        headers["content-type"] = "application/json"
        inject_trace(headers)
        try:
            body = codec.encode_request(request)
        except codec.UnencodableRequest as exc:
            raise Unanswered(f"error encoding request: {exc}") from None
        try:
            async with self._open().post(self.config.endpoint, data=body, headers=headers) as response:
                if response.status != 200:
                    return self._transformed(response.status, response_type)
                answer = await response.read()
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError, ValueError) as exc:
            raise Unanswered(f"HTTP request error: {exc!r}") from None
        try:
            return codec.decode_response(answer, response_type)
        except codec.MalformedAnswer as exc:
            raise Unanswered(f"malformed answer: {exc}") from None

    def _transformed(self, status: int, response_type: type[M]) -> M:
        """``http.status_to_code_transforms``: a status becomes an error or a disconnect."""
        rule = self._transforms.get(status)
        if rule is not None and rule.to_error.code > 0:
            error = Error(
                code=rule.to_error.code, message=rule.to_error.message, temporary=rule.to_error.temporary
            )
            return response_type(error=error)
        if rule is not None and rule.to_disconnect.code > 0:
            disconnect = Disconnect(code=rule.to_disconnect.code, reason=rule.to_disconnect.reason)
            return response_type(disconnect=disconnect)
        raise Unanswered(f"unexpected HTTP status code: {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def backend_for(config: ProxyConfig, name: str = "default") -> Backend:
    """HTTP for http:// and https:// endpoints, GRPC for anything else (as Centrifugo decides)."""
    if config.endpoint.startswith(("http://", "https://")):
        return HttpBackend(config, name)
    from rotary.server.proxy.grpc_backend import GrpcBackend  # grpcio is the `grpc` extra

    return GrpcBackend(config, name)
