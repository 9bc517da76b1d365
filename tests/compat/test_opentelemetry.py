"""OpenTelemetry spans of HTTP API calls reach a real OTLP receiver, over HTTP and over gRPC.

The receiver is the test's own: an aiohttp ``POST /v1/traces`` endpoint or a gRPC ``TraceService``,
both decoding opentelemetry-proto's ``ExportTraceServiceRequest``. rotary runs as a process with the
standard ``OTEL_*`` variables, as Centrifugo is configured.
See https://centrifugal.dev/docs/server/observability#opentelemetry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from compat.conftest import RotaryServer, unique_channel
from grpc import aio  # type: ignore[import-untyped]
from helpers.env import free_port
from helpers.proxy_backend import ProxyBackend
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

pytestmark = pytest.mark.compat

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
WAIT = 10.0


class Receiver:
    """Every span exported to it, with its resource attributes."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], trace_pb2.Span]] = []
        self.arrived = asyncio.Event()

    def take(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans += [(resource, span) for span in scope.spans]
        self.arrived.set()

    async def wait_for(self, count: int) -> list[tuple[dict[str, Any], trace_pb2.Span]]:
        async with asyncio.timeout(WAIT):
            while len(self.spans) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.spans


@pytest.fixture
async def http_receiver() -> AsyncIterator[tuple[Receiver, int]]:
    receiver = Receiver()

    async def export(request: web.Request) -> web.Response:
        message = trace_service_pb2.ExportTraceServiceRequest.FromString(await request.read())
        receiver.take(message)
        body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", export)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield receiver, port
    await runner.cleanup()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def Export(self, request: Any, context: Any) -> Any:
        self.receiver.take(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
async def grpc_receiver() -> AsyncIterator[tuple[Receiver, int]]:
    receiver = Receiver()
    server = aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(receiver), server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    yield receiver, port
    await server.stop(None)


async def call_api(server: RotaryServer, method: str, payload: dict[str, Any]) -> dict[str, Any]:
    headers = {"X-API-Key": server.api_key, "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.http_url}/api/{method}", json=payload, headers=headers) as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
    return body


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_api_spans_reach_the_collector(
    protocol: str,
    http_receiver: tuple[Receiver, int],
    grpc_receiver: tuple[Receiver, int],
    start_rotary: Callable[[dict[str, Any]], RotaryServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, port = http_receiver if protocol == "http/protobuf" else grpc_receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    rotary = start_rotary({"opentelemetry": {"enabled": True, "api": True}})
    channel = f"chat:{unique_channel()}"

    assert "error" not in await call_api(rotary, "publish", {"channel": channel, "data": {}})
    assert (await call_api(rotary, "publish", {"channel": "", "data": {}}))["error"]["code"] == 107
    spans = await receiver.wait_for(2)

    (resource, ok), (_, failed) = spans[:2]
    assert resource["service.name"] == "centrifugo"
    assert resource["deployment.environment"] == "test"
    assert resource["service.instance.id"]
    for span in (ok, failed):
        assert span.name == "/api/publish"
        assert span.kind == trace_pb2.Span.SPAN_KIND_SERVER
        assert span.trace_id.hex() == TRACE_ID
        assert span.parent_span_id.hex() == PARENT_ID
    attributes = {a.key: a for a in ok.attributes}
    assert attributes["centrifugo.channel"].value.string_value == channel
    assert attributes["http.response.status_code"].value.int_value == 200
    assert ok.status.code != trace_pb2.Status.STATUS_CODE_ERROR
    assert failed.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert "107" in failed.status.message


async def test_api_off_makes_no_spans(
    http_receiver: tuple[Receiver, int],
    start_rotary: Callable[[dict[str, Any]], RotaryServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, port = http_receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    rotary = start_rotary({"opentelemetry": {"enabled": True, "api": False}})
    await call_api(rotary, "publish", {"channel": "chat:x", "data": {}})
    rotary.process.stop()  # the provider is flushed at shutdown
    assert receiver.spans == []


async def test_proxy_calls_are_client_spans_and_carry_the_trace(
    http_receiver: tuple[Receiver, int],
    start_rotary: Callable[[dict[str, Any]], RotaryServer],
    sdk_clients: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connect proxy call is a client span named by its type, and its request carries that span's
    ``traceparent``, so the backend's own spans join the trace."""
    receiver, port = http_receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    backend = ProxyBackend()
    await backend.start()
    try:
        backend.answers["connect"] = lambda req: {"result": {"user": "alice"}}
        proxy = {"enabled": True, "endpoint": backend.http_endpoint("connect"), "timeout": "3s"}
        rotary = start_rotary({"opentelemetry": {"enabled": True}, "client": {"proxy": {"connect": proxy}}})
        sdk = sdk_clients(rotary)
        await sdk.client.connect()
        await sdk.events.next("on_connected")
        (_, span), *_ = await receiver.wait_for(1)
        traceparent = backend.requests("connect")[0].headers["traceparent"]
    finally:
        await backend.stop()
    assert span.name == "proxy connect"
    assert span.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    attributes = {a.key: a.value.string_value for a in span.attributes}
    assert attributes["centrifugo.proxy.type"] == "connect"
    assert attributes["centrifugo.proxy.name"] == "default"
    assert traceparent.split("-")[1:3] == [span.trace_id.hex(), span.span_id.hex()]
