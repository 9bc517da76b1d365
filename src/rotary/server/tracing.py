"""OpenTelemetry traces of server API calls, exported over OTLP as Centrifugo exports them.

With ``opentelemetry.enabled`` the server builds a tracer provider whose exporter the standard
``OTEL_*`` variables configure (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``..._HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``...); ``OTEL_EXPORTER_OTLP_PROTOCOL`` picks
``http/protobuf`` (the default) or ``grpc``, as in Centrifugo. With ``opentelemetry.api`` each HTTP
API request is a server span named by its route (``/api/publish``), continuing the caller's W3C
``traceparent``; an API error sets the span's status to error, and a request naming a channel adds
``centrifugo.channel``. ``opentelemetry.consuming`` traces async consumers, which rotary does not
have, so it has nothing to trace.

Nothing here imports ``opentelemetry`` until ``start_tracing`` runs, so with tracing off the
packages (the optional ``otel`` extra) are neither needed nor loaded, and the API path only reads
one module global. See https://centrifugal.dev/docs/server/observability#opentelemetry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

PROTOCOL_VARIABLE = "OTEL_EXPORTER_OTLP_PROTOCOL"
PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_SERVICE_NAME = "centrifugo"
"""Centrifugo's service name when ``OTEL_SERVICE_NAME`` is unset; kept, so traces of a swapped-in
rotary land where Centrifugo's did."""
PACKAGES = "opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http and -grpc"


def missing_packages() -> bool:
    """Whether the ``otel`` extra is not installed (checked without importing it)."""
    from importlib.util import find_spec

    try:
        return find_spec("opentelemetry.sdk") is None
    except ModuleNotFoundError:
        return True


def exporter_protocol() -> str:
    return os.environ.get(PROTOCOL_VARIABLE, "") or PROTOCOLS[0]


class Tracing:
    """The tracer provider of one server process and the spans rotary makes with it."""

    def __init__(self, provider: TracerProvider, tracer: Tracer) -> None:
        self.provider = provider
        self.tracer = tracer

    def span(
        self,
        name: str,
        kind: str = "internal",
        attributes: Mapping[str, str | int] | None = None,
        carrier: Mapping[str, str] | None = None,
    ) -> AbstractContextManager[Span]:
        """A span, current for the block; the span helper for other features, e.g. a proxy call::

            with tracing.span("proxy connect", kind="client", attributes={"centrifugo.proxy": name}):
                headers = tracing.inject({})   # the backend sees the caller's trace
                ...

        ``kind`` is internal, server, client, producer or consumer; ``carrier`` holds the incoming
        W3C headers (``traceparent``) to continue. An exception leaving the block marks the span as
        an error.
        """
        from opentelemetry import trace
        from opentelemetry.propagate import extract

        context = extract(carrier) if carrier is not None else None
        return self.tracer.start_as_current_span(
            name, context=context, kind=trace.SpanKind[kind.upper()], attributes=attributes
        )

    def inject(self, headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
        """Adds the current span's ``traceparent`` to outgoing request headers."""
        from opentelemetry.propagate import inject

        inject(headers)
        return headers

    def shutdown(self) -> None:
        """Exports what is still batched; blocks up to the exporter's timeout."""
        self.provider.shutdown()


class _Current:
    """The process's tracing once started; read by ``api_outcome`` on every API call."""

    tracing: Tracing | None = None


_current = _Current()


def start_tracing(node_id: str, version: str) -> Tracing:
    """Builds the provider and exporter from the environment; the caller checked the config
    (``opentelemetry.enabled``) and the validation checked the packages and the protocol."""
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    exporter: SpanExporter
    if exporter_protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter()
    attributes: dict[str, str] = {
        "service.name": os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
        "service.instance.id": node_id,
        "version": version,
    }
    resource = Resource.create(attributes).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    _current.tracing = Tracing(provider, provider.get_tracer("rotary"))
    return _current.tracing


def stop_tracing(tracing: Tracing) -> None:
    tracing.shutdown()
    if _current.tracing is tracing:
        _current.tracing = None


def api_outcome(request: Any, error: tuple[int, str] | None) -> None:
    """What the current API span learns from the executor: the channel, and the error if any."""
    tracing = _current.tracing
    if tracing is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    span = trace.get_current_span()
    channel = getattr(request, "channel", None)
    if isinstance(channel, str) and channel:
        span.set_attribute("centrifugo.channel", channel)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, f"{error[0]}: {error[1]}"))


def api_middleware(tracing: Tracing, routes: frozenset[str]) -> Middleware:
    """A server span around each request of the API ``routes`` (their paths), named by the route."""

    @web.middleware
    async def trace_api(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else ""
        if name not in routes:
            return await handler(request)
        attributes = {"http.request.method": request.method, "url.path": request.path}
        with tracing.span(name, "server", attributes, request.headers) as span:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                from opentelemetry.trace import Status, StatusCode

                span.set_status(Status(StatusCode.ERROR))
            return response

    return trace_api


def proxy_span(kind: str, name: str) -> AbstractContextManager[Any]:
    """For the proxy code: a client span around one proxy request, nothing when tracing is off::

    with proxy_span("connect", proxy.name):
        response = await session.post(url, headers=inject_trace(headers), ...)
    """
    tracing = _current.tracing
    if tracing is None:
        return nullcontext()
    attributes = {"centrifugo.proxy.type": kind, "centrifugo.proxy.name": name}
    return tracing.span(f"proxy {kind}", "client", attributes)


def inject_trace(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``headers`` with the current trace's ``traceparent`` when tracing is on, unchanged otherwise."""
    tracing = _current.tracing
    return tracing.inject(headers) if tracing is not None else headers
