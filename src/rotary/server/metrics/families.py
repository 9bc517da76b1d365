"""Centrifugo v6.9.1's metric families, filled from the node's counts at scrape time.

Names, types, help texts, label names and buckets are Centrifugo's (its own ``internal/metrics``
and centrifuge's ``metrics.go`` with namespace ``centrifugo``). Centrifugo OSS sets no channel
namespace label and no client labels, so ``channel_namespace`` is always empty, as it is there.
Families Centrifugo creates before any traffic (the node gauges, command durations per method,
broker message counts) are always written; the others once they have a series, as in Go.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from rotary.node.metrics import Counts, Histogram, Metrics, Timing
from rotary.node.node import Node, NodeInfo
from rotary.server.metrics.text import Family

NS = "centrifugo"
QUANTILES: tuple[float, ...] = (0.5, 0.99, 0.999)
"""The quantiles of Centrifugo's (deprecated, still exported) summaries."""


def _histogram(family: Family, labels: list[tuple[str, str]], h: Histogram) -> None:
    cumulative = 0
    for bound, count in zip(h.bounds, h.counts, strict=False):
        cumulative += count
        family.add([*labels, ("le", _le(bound))], cumulative, "_bucket")
    family.add([*labels, ("le", "+Inf")], h.count, "_bucket")
    family.add(labels, h.sum, "_sum")
    family.add(labels, h.count, "_count")


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else repr(bound)


def _summary(family: Family, labels: list[tuple[str, str]], t: Timing, now: float) -> None:
    for rank, value in zip(QUANTILES, t.quantiles(QUANTILES, now), strict=True):
        family.add([*labels, ("quantile", repr(rank))], value)
    family.add(labels, t.sum, "_sum")
    family.add(labels, t.count, "_count")


def _timings(
    name: str,
    summary_help: str,
    histogram_help: str,
    label_names: tuple[str, ...],
    timings: Mapping[tuple[str, ...], Timing],
    now: float,
) -> Iterator[Family]:
    """A duration as Centrifugo exports it: a summary ``name`` and a histogram ``name_histogram``."""
    if not timings:
        return
    summary = Family(name, "summary", summary_help)
    histogram = Family(name + "_histogram", "histogram", histogram_help)
    for values, timing in sorted(timings.items()):
        labels = list(zip(label_names, values, strict=True))
        _summary(summary, labels, timing, now)
        _histogram(histogram, labels, timing)
    yield summary
    yield histogram


def _counter(name: str, help_text: str, label_names: tuple[str, ...], counts: Counts, kind: str) -> Family:
    family = Family(name, kind, help_text)
    for values, value in sorted(counts.items()):
        family.add(list(zip(label_names, values, strict=True)), value)
    return family


def _counters(
    name: str, help_text: str, label_names: tuple[str, ...], counts: Counts, kind: str = "counter"
) -> Iterator[Family]:
    if counts:
        yield _counter(name, help_text, label_names, counts, kind)


def _messages(
    name: str, what: str, label_names: tuple[str, ...], slots: dict[tuple[str, str], list[int]]
) -> Iterator[Family]:
    if not slots:
        return
    count = Family(name, "counter", f"Number of messages {what} client connections over specific transport.")
    size = Family(
        name + "_size",
        "counter",
        f"MaxSize in bytes of messages {what} client connections over specific transport "
        "(uncompressed and does not include framing overhead).",
    )
    for (transport, frame_type), (n, total) in sorted(slots.items()):
        labels = list(zip(label_names, (transport, frame_type, ""), strict=True))
        count.add(labels, n)
        size.add(labels, total)
    yield count
    yield size


def collect(node: Node, metrics: Metrics, num_nodes: int, info: NodeInfo) -> Iterator[Family]:
    """Every family, in name order as Go writes them; the node gauges from ``info``."""
    now = time.monotonic()
    m = metrics
    client_ns = ("method", "channel_namespace")
    families: list[Family] = []
    families += _timings(
        f"{NS}_api_command_duration_seconds",
        "DEPRECATED — use centrifugo_api_command_duration_seconds_histogram. Will be removed in "
        "Centrifugo v7. Duration of API per command.",
        "Histogram of duration of API per command.",
        ("protocol", "method"),
        {k: v for k, v in m.api_commands.items()},
        now,
    )
    families += _counters(
        f"{NS}_api_command_errors_total",
        "Total errors in API commands.",
        ("protocol", "method", "error"),
        m.api_errors,
    )
    families += _timings(
        f"{NS}_client_command_duration_seconds",
        "DEPRECATED — use command_duration_seconds_histogram. Will be removed in future releases. "
        "Client command duration summary.",
        "Client command duration histogram. Use for histogram_quantile() and OpenTelemetry export.",
        client_ns,
        {(method, ""): timing for method, timing in m.commands.items()},
        now,
    )
    families += _counters(
        f"{NS}_broker_publish_suppressed_count",
        "Number of suppressed publish operations.",
        ("reason", "channel_namespace"),
        Counts({(reason, ""): v for (reason,), v in m.broker_suppressed.items()}),
    )
    families += _counters(
        f"{NS}_client_connections_accepted",
        "Count of accepted transports.",
        ("transport", "accept_protocol", "client_name", "client_version"),
        m.connections_accepted,
    )
    families += _counters(
        f"{NS}_client_connections_inflight",
        "Number of inflight client connections.",
        ("transport", "accept_protocol", "client_name", "client_version"),
        m.connections_inflight,
        "gauge",
    )
    families += _counters(
        f"{NS}_client_num_reply_errors",
        "Number of errors in replies sent to clients.",
        ("method", "code", "channel_namespace"),
        Counts({(method, code, ""): v for (method, code), v in m.reply_errors.items()}),
    )
    families += _counters(
        f"{NS}_client_num_server_disconnects",
        "Number of server initiated disconnects.",
        ("code",),
        m.server_disconnects,
    )
    families += _counters(
        f"{NS}_client_num_server_unsubscribes",
        "Number of server initiated unsubscribes.",
        ("code", "channel_namespace"),
        Counts({(code, ""): v for (code,), v in m.server_unsubscribes.items()}),
    )
    if m.ping_pongs:
        ping_pong = Family(
            f"{NS}_client_ping_pong_duration_seconds", "histogram", "Ping/Pong duration in seconds"
        )
        for transport, histogram in sorted(m.ping_pongs.items()):
            _histogram(ping_pong, [("transport", transport)], histogram)
        families.append(ping_pong)
    families += _counters(
        f"{NS}_client_recover",
        "Count of recover operations with success/fail resolution.",
        ("recovered", "channel_namespace", "has_recovered_publications"),
        Counts({(ok, "", has): v for (ok, has), v in m.recovers.items()}),
    )
    if m.recovered_publications is not None and m.recovered_publications.count:
        recovered = Family(
            f"{NS}_client_recovered_publications",
            "histogram",
            "Number of publications recovered during subscription recovery.",
        )
        _histogram(recovered, [("channel_namespace", "")], m.recovered_publications)
        families.append(recovered)
    families += _counters(
        f"{NS}_client_subscriptions_inflight",
        "Number of inflight client subscriptions.",
        ("client_name", "channel_namespace"),
        Counts({(name, ""): v for (name,), v in m.subscriptions_inflight.items()}),
        "gauge",
    )
    families += _counters(
        f"{NS}_node_action_count",
        "Number of various actions called.",
        ("action", "channel_namespace"),
        Counts({(action, ""): v for (action,), v in m.actions.items()}),
    )
    if m.broadcasts.count:
        broadcast = Family(
            f"{NS}_node_broadcast_duration_seconds", "histogram", "Broadcast duration in seconds"
        )
        _histogram(broadcast, [("channel_namespace", ""), ("type", "publication")], m.broadcasts)
        families.append(broadcast)
    build = Family(f"{NS}_node_build", "gauge", "Node build info.")
    build.add([("version", node.config.version)], 1)
    families.append(build)
    limit = Family(
        f"{NS}_node_client_connection_limit",
        "counter",
        "Number of refused requests due to node client connection limit.",
    )
    limit.add([], m.connection_limit)
    families.append(limit)
    families += _counters(
        f"{NS}_node_incoming_http_requests_total",
        "Number of incoming HTTP requests",
        ("path", "method", "status"),
        m.http_requests,
    )
    for name, counts, text in (
        ("received", m.broker_received, "Number of messages received from broker."),
        ("sent", m.broker_sent, "Number of messages sent by node to broker."),
    ):
        families.append(
            _counter(
                f"{NS}_node_messages_{name}_count",
                text,
                ("type", "channel_namespace"),
                Counts({(kind, ""): v for (kind,), v in counts.items()}),
                "counter",
            )
        )
    if m.tags_filter_dropped:
        dropped = Family(
            f"{NS}_node_tags_filter_dropped_publications",
            "counter",
            "Number of publications dropped due to tags filtering.",
        )
        dropped.add([("channel_namespace", "")], m.tags_filter_dropped)
        families.append(dropped)
    for name, value, text in (
        ("num_channels", info.num_channels, "Number of channels with one or more subscribers."),
        ("num_clients", info.num_clients, "Number of clients connected."),
        ("num_nodes", num_nodes, "Number of nodes in the cluster."),
        ("num_subscriptions", info.num_subs, "Number of subscriptions."),
        ("num_users", info.num_users, "Number of unique users connected."),
    ):
        gauge = Family(f"{NS}_node_{name}", "gauge", text)
        gauge.add([], value)
        families.append(gauge)
    families += _counters(
        f"{NS}_proxy_errors",
        "Proxy call error count.",
        ("protocol", "type", "name"),
        m.proxy_errors,
    )
    families += _timings(
        f"{NS}_node_survey_duration_seconds",
        "DEPRECATED — use survey_duration_seconds_histogram. Will be removed in future releases. "
        "Survey duration summary.",
        "Survey duration histogram. Use for histogram_quantile() and OpenTelemetry export.",
        ("op",),
        {(op,): timing for op, timing in m.surveys.items()},
        now,
    )
    families += _timings(
        f"{NS}_proxy_duration_seconds",
        "DEPRECATED — use centrifugo_proxy_duration_seconds_histogram. Will be removed in "
        "Centrifugo v7. Duration of proxy call.",
        "Histogram of duration of proxy call.",
        ("protocol", "type", "name"),
        {k: v for k, v in m.proxy_calls.items()},
        now,
    )
    families += _counters(
        f"{NS}_proxy_inflight_requests",
        "Number of inflight proxy requests.",
        ("protocol", "type", "name"),
        m.proxy_inflight,
        "gauge",
    )
    transport_labels = ("transport", "frame_type", "channel_namespace")
    families += _messages(f"{NS}_transport_messages_received", "received from", transport_labels, m.received)
    families += _messages(f"{NS}_transport_messages_sent", "sent to", transport_labels, m.sent)
    families += _counters(
        f"{NS}_transport_outgoing_close_count",
        "Number of close frames sent to clients, by transport and code.",
        ("transport", "code"),
        m.outgoing_closes,
    )
    return iter(sorted(families, key=lambda f: f.name))
