"""The Prometheus endpoint (``prometheus.handler_prefix``) and the HTTP request counter
(``prometheus.instrument_http_handlers``).

The endpoint sits with the API and health on the internal port when there is one, as in Centrifugo.
Besides Centrifugo's own families it writes the process metrics prometheus_client collects (the
``process_*`` names Go's client writes too) and counts its scrapes as promhttp does.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import ProcessCollector

from rotary.node.metrics import Metrics
from rotary.node.node import Node
from rotary.server.config.schema import PrometheusConfig
from rotary.server.metrics.families import collect
from rotary.server.metrics.group import WorkerGroup, worker_group
from rotary.server.metrics.text import CONTENT_TYPE, Family, render

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Scrapes:
    """promhttp's own two families: scrapes by status code and scrapes in flight."""

    def __init__(self) -> None:
        self.by_code = {"200": 0, "500": 0, "503": 0}
        self.in_flight = 0

    def families(self) -> Iterator[Family]:
        in_flight = Family(
            "promhttp_metric_handler_requests_in_flight", "gauge", "Current number of scrapes being served."
        )
        in_flight.add([], self.in_flight)
        yield in_flight
        total = Family(
            "promhttp_metric_handler_requests_total",
            "counter",
            "Total number of scrapes by HTTP status code.",
        )
        for code, count in self.by_code.items():
            total.add([("code", code)], count)
        yield total


def process_families() -> Iterator[Family]:
    """prometheus_client's process collector (CPU, memory, file descriptors, start time)."""
    for metric in ProcessCollector(registry=None).collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        family = Family(name, metric.type, metric.documentation)
        for sample in metric.samples:
            family.add(sorted(sample.labels.items()), sample.value, sample.name[len(name) :])
        yield family


def _num_nodes(node: Node) -> int:
    return len(node.control.live_nodes()) if node.control is not None else 1


def metrics_handler(node: Node, metrics: Metrics, group: WorkerGroup | None = None) -> Handler:
    """Serves this process's numbers, or with ``group`` those of every worker added up."""
    scrapes = Scrapes()

    async def handle(request: web.Request) -> web.Response:
        scrapes.in_flight += 1
        try:
            process = list(process_families())
            if group is None:
                families = [*collect(node, metrics, _num_nodes(node), node.info()), *process]
            else:
                together = await group.gather(process)
                families = [*collect(node, together.metrics, _num_nodes(node), together.info), *process]
            families += scrapes.families()
            body = render(sorted(families, key=lambda f: f.name))
        except Exception:
            scrapes.by_code["500"] += 1
            raise
        finally:
            scrapes.in_flight -= 1
        scrapes.by_code["200"] += 1
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return handle


def http_instrumentation(metrics: Metrics) -> Middleware:
    """Counts every HTTP request by route, method and status, as Centrifugo's middleware does.

    The path label is the route that matched, never a raw client-chosen path, so the number of
    series stays bounded: a parametrized route that answered (the API's ``/api/{method}``) is
    labelled with its concrete path, as Centrifugo registers each API method's own route; anything
    unmatched or refused as unknown (404) is "other".
    """

    @web.middleware
    async def instrument(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.http_request(_path_label(request, status), request.method, status)

    return instrument


def _path_label(request: web.Request, status: int) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None or status == 404:
        return "other"
    return request.path if "{" in resource.canonical else resource.canonical


def add_metrics(
    endpoint_app: web.Application,
    apps: list[web.Application],
    node: Node,
    metrics: Metrics,
    config: PrometheusConfig,
) -> None:
    """Routes the endpoint on ``endpoint_app`` and, when asked, instruments every app of ``apps``.

    A worker of ``--workers`` also answers the other workers' scrapes (``group``) while the app runs.
    """
    group = worker_group(node, metrics, process_families)
    if group is not None:
        endpoint_app.on_startup.append(lambda _: group.start())
        endpoint_app.on_cleanup.append(lambda _: group.close())
    path = config.handler_prefix.rstrip("/") or "/"
    endpoint_app.router.add_get(path, metrics_handler(node, metrics, group))
    if config.instrument_http_handlers:
        for app in apps:
            app.middlewares.append(http_instrumentation(metrics))
