"""What the node, the transports and the server count for Prometheus, kept as plain numbers.

The counting points call these methods only when the node has a ``Metrics`` (``Node.metrics`` is
None when ``prometheus.enabled`` is off, so nothing is counted then). Each count is a dict update:
no lock, no Prometheus object, no label lookup by name. ``rotary.server.metrics`` turns the numbers
into Centrifugo's metric families (names, types, labels, buckets) when ``/metrics`` is scraped.
Centrifugo OSS never sets a channel namespace label or client labels, so they are not kept here.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Prometheus' default buckets (Go's ``prometheus.DefBuckets``)."""

COMMAND_BUCKETS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, *DEFAULT_BUCKETS)
"""centrifuge's command and ping/pong duration buckets: microsecond resolution below DefBuckets."""

BROADCAST_BUCKETS: tuple[float, ...] = (0.000001, 0.000005, 0.00001, 0.00005, *COMMAND_BUCKETS)
"""centrifuge's broadcast duration buckets."""

SURVEY_BUCKETS: tuple[float, ...] = (0.001, *DEFAULT_BUCKETS)
"""centrifuge's survey duration buckets."""

RECOVERED_BUCKETS: tuple[float, ...] = (0, 1, 2, 3, 5, 10, 20, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
"""centrifuge's buckets of publications recovered per recovery."""

SUMMARY_WINDOW = 600.0
"""Seconds of observations a summary's quantiles describe (Go's default MaxAge, 10 minutes)."""

SUMMARY_SAMPLES = 1024
"""Most recent observations a summary keeps per series for its quantiles."""

COMMAND_METHODS: tuple[str, ...] = (
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "send",
    "rpc",
    "refresh",
    "sub_refresh",
    "unknown",
)
"""The command methods centrifuge creates duration series for before any command arrives."""

BROKER_MESSAGE_TYPES: tuple[str, ...] = ("publication", "join", "leave", "control")

Snapshot = dict[str, Any]
"""Every number of a ``Metrics`` as JSON-able data (``Metrics.snapshot``), for another process to add
to its own (``Metrics.absorb``): the workers of ``rotary --workers N`` answer one scrape together."""


class Histogram:
    """Cumulative-on-export bucket counts, a sum and a count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times


class Timing(Histogram):
    """A histogram that also feeds a summary, as Centrifugo exports both for its durations.

    The summary's quantiles come from the last ``SUMMARY_SAMPLES`` observations of the last
    ``SUMMARY_WINDOW`` seconds (Go keeps a 10-minute window too); its sum and count are the
    histogram's.
    """

    __slots__ = ("recent",)

    def __init__(self, bounds: tuple[float, ...]) -> None:
        super().__init__(bounds)
        self.recent: deque[tuple[float, float]] = deque(maxlen=SUMMARY_SAMPLES)

    def observe(self, value: float, times: int = 1) -> None:
        super().observe(value, times)
        self.recent.append((time.monotonic(), value))

    def quantiles(self, ranks: tuple[float, ...], now: float) -> list[float]:
        """Each rank's value among the window's observations; NaN when the window is empty."""
        values = sorted(v for t, v in self.recent if now - t <= SUMMARY_WINDOW)
        if not values:
            return [float("nan")] * len(ranks)
        last = len(values) - 1
        return [values[min(last, int(rank * len(values)))] for rank in ranks]


class Counts(dict[tuple[str, ...], float]):
    """A counter family's values by label values."""

    def add(self, labels: tuple[str, ...], amount: float = 1) -> None:
        self[labels] = self.get(labels, 0) + amount


class Metrics:
    """Every number rotary exports with Centrifugo's metric names; see ``rotary.server.metrics``."""

    def __init__(
        self, clock: Callable[[], float] = time.perf_counter, recovered_publications: bool = False
    ) -> None:
        self.clock = clock
        # Client commands (labels: method), replies with errors (method, code).
        self.commands: dict[str, Timing] = {m: Timing(COMMAND_BUCKETS) for m in COMMAND_METHODS}
        self.reply_errors = Counts()
        # Transport messages by (transport, frame_type): [count, bytes].
        self.sent: dict[tuple[str, str], list[int]] = {}
        self.received: dict[tuple[str, str], list[int]] = {}
        # Connections by (transport, accept_protocol, client_name, client_version).
        self.connections_accepted = Counts()
        self.connections_inflight = Counts()
        self.subscriptions_inflight = Counts()  # by client_name
        self.server_disconnects = Counts()  # by code
        self.server_unsubscribes = Counts()  # by code
        self.outgoing_closes = Counts()  # by (transport, code)
        self.recovers = Counts()  # by (recovered, has_recovered_publications)
        self.recovered_publications = Histogram(RECOVERED_BUCKETS) if recovered_publications else None
        """Publications per recovery (``prometheus.recovered_publications_histogram``)."""
        self.actions = Counts()  # by action
        self.broker_sent = Counts({(t,): 0 for t in BROKER_MESSAGE_TYPES})
        self.broker_received = Counts({(t,): 0 for t in BROKER_MESSAGE_TYPES})
        self.broadcasts = Histogram(BROADCAST_BUCKETS)
        self.tags_filter_dropped = 0
        """Publications subscribers' tags filters kept from them, added per fan-out group."""
        self.broker_suppressed = Counts()  # by reason (idempotency, version)
        """Publications subscribers' tags filters kept from them, added per fan-out group."""
        self.surveys: dict[str, Timing] = {}  # by op
        self.ping_pongs: dict[str, Histogram] = {}  # by transport
        self.connection_limit = 0
        # Centrifugo's own: server API, proxies, HTTP requests.
        self.api_commands: dict[tuple[str, str], Timing] = {}  # (protocol, method)
        self.api_errors = Counts()  # (protocol, method, error)
        self.proxy_calls: dict[tuple[str, str, str], Timing] = {}  # (protocol, type, name)
        self.proxy_errors = Counts()
        self.proxy_inflight = Counts()
        self.http_requests = Counts()  # (path, method, status)

    # -- client connections --------------------------------------------------------------------

    def command(self, method: str, seconds: float) -> None:
        timing = self.commands.get(method)
        if timing is None:
            timing = self.commands["unknown"]
        timing.observe(seconds)

    def reply_error(self, method: str, code: int) -> None:
        self.reply_errors.add((method, str(code)))

    def message_sent(self, transport: str, frame_type: str, size: int, count: int = 1) -> None:
        """``count`` messages of ``size`` bytes in total; the fan-out adds one group at a time."""
        slot = self.sent.get((transport, frame_type))
        if slot is None:
            slot = self.sent[(transport, frame_type)] = [0, 0]
        slot[0] += count
        slot[1] += size

    def message_received(self, transport: str, frame_type: str, size: int) -> None:
        slot = self.received.get((transport, frame_type))
        if slot is None:
            slot = self.received[(transport, frame_type)] = [0, 0]
        slot[0] += 1
        slot[1] += size

    def connection_added(self, labels: tuple[str, str, str, str]) -> None:
        """A connection passed its connect: (transport, accept_protocol, client_name, client_version)."""
        self.actions.add(("add_client",))
        self.connections_accepted.add(labels)
        self.connections_inflight.add(labels)

    def connection_removed(self, labels: tuple[str, str, str, str]) -> None:
        self.actions.add(("remove_client",))
        self.connections_inflight.add(labels, -1)

    def subscription_added(self, client_name: str) -> None:
        self.actions.add(("add_subscription",))
        self.subscriptions_inflight.add((client_name,))

    def subscription_removed(self, client_name: str) -> None:
        self.actions.add(("remove_subscription",))
        self.subscriptions_inflight.add((client_name,), -1)

    def ping_pong(self, transport: str, seconds: float) -> None:
        """A pong arrived ``seconds`` after its ping."""
        histogram = self.ping_pongs.get(transport)
        if histogram is None:
            histogram = self.ping_pongs[transport] = Histogram(COMMAND_BUCKETS)
        histogram.observe(seconds)

    def server_disconnect(self, transport: str, code: int) -> None:
        """The server ended a connection with ``code`` (a close frame or its push equivalent).

        The bidirectional WebSocket's close frames count as outgoing closes here: Centrifugo counts
        them in its WebSocket handlers, not for SockJS or the streams; uni_websocket counts its own
        (:meth:`outgoing_close`), since it sends no close frame with `disable_closing_handshake`.
        """
        self.server_disconnects.add((str(code),))
        if transport == "websocket":
            self.outgoing_closes.add((transport, str(code)))

    def outgoing_close(self, transport: str, code: int) -> None:
        """A close frame with ``code`` went to a client that had not sent its own first."""
        self.outgoing_closes.add((transport, str(code)))

    def server_unsubscribe(self, code: int) -> None:
        self.server_unsubscribes.add((str(code),))

    def recover(self, recovered: bool, publications: int) -> None:
        self.recovers.add(("yes" if recovered else "no", "yes" if publications else "no"))
        if self.recovered_publications is not None:
            self.recovered_publications.observe(publications)

    def action(self, name: str) -> None:
        self.actions.add((name,))

    def survey(self, op: str, seconds: float) -> None:
        """A question to every node (``channels``), answered or timed out after ``seconds``."""
        self.actions.add(("survey",))
        timing = self.surveys.get(op)
        if timing is None:
            timing = self.surveys[op] = Timing(SURVEY_BUCKETS)
        timing.observe(seconds)

    # -- the server: API, proxies, HTTP ---------------------------------------------------------

    def api_command(self, protocol: str, method: str, seconds: float) -> None:
        timing = self.api_commands.get((protocol, method))
        if timing is None:
            timing = self.api_commands[(protocol, method)] = Timing(DEFAULT_BUCKETS)
        timing.observe(seconds)

    def api_error(self, protocol: str, method: str, code: int) -> None:
        self.api_errors.add((protocol, method, str(code)))

    @contextmanager
    def proxy_call(self, protocol: str, kind: str, name: str) -> Iterator[None]:
        """Times one proxy request, for the proxy code to wrap each call in::

            with node.metrics.proxy_call("http", "connect", "default"):
                response = await post(...)

        ``protocol`` is "http" or "grpc", ``kind`` the proxy type (connect, refresh, subscribe,
        publish, sub_refresh, rpc, subscribe_stream, ...), ``name`` the proxy's name ("default" for
        the unnamed one). An exception leaving the block counts as an error, as Centrifugo counts a
        failed call (transport error or a non-200 answer).
        """
        labels = (protocol, kind, name)
        self.proxy_inflight.add(labels)
        started = self.clock()
        try:
            yield
        except BaseException:
            self.proxy_errors.add(labels)
            raise
        finally:
            self.proxy_inflight.add(labels, -1)
            timing = self.proxy_calls.get(labels)
            if timing is None:
                timing = self.proxy_calls[labels] = Timing(DEFAULT_BUCKETS)
            timing.observe(self.clock() - started)

    def http_request(self, path: str, method: str, status: int) -> None:
        self.http_requests.add((path, method, str(status)))

    # -- one scrape for several processes -------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Every count, histogram and summary sample, as lists, numbers and strings."""
        return {name: _dump(value) for name, value in vars(self).items() if name != "clock"}

    def absorb(self, snapshot: Snapshot) -> None:
        """Adds another process's ``snapshot`` to these numbers: counters and gauges sum, histograms
        add bucket by bucket, summaries pool their recent observations."""
        for name, dumped in snapshot.items():
            current = getattr(self, name, None)
            if dumped is None:
                continue
            if current is None and name == "recovered_publications":
                current = self.recovered_publications = Histogram(RECOVERED_BUCKETS)
            if isinstance(current, Histogram):
                _absorb_histogram(current, dumped)
            elif isinstance(current, Counts):
                for labels, value in dumped:
                    current.add(tuple(labels), value)
            elif isinstance(current, dict):
                for key, value in dumped:
                    _absorb_entry(current, tuple(key) if isinstance(key, list) else key, value)
            elif isinstance(current, int | float):
                setattr(self, name, current + dumped)


def _dump(value: Any) -> Any:
    if isinstance(value, Histogram):
        recent = list(value.recent) if isinstance(value, Timing) else None
        return {"bounds": value.bounds, "counts": value.counts, "sum": value.sum, "recent": recent}
    if isinstance(value, Counts):
        return [[list(labels), count] for labels, count in value.items()]
    if isinstance(value, dict):
        return [[list(key) if isinstance(key, tuple) else key, _dump(v)] for key, v in value.items()]
    return value


def _absorb_entry(into: dict[Any, Any], key: Any, dumped: Any) -> None:
    """One entry of a keyed family: a histogram or summary, or a [messages, bytes] pair."""
    if isinstance(dumped, list):
        slot = into.setdefault(key, [0] * len(dumped))
        for i, value in enumerate(dumped):
            slot[i] += value
        return
    current = into.get(key)
    if current is None:
        bounds = tuple(dumped["bounds"])
        current = into[key] = Timing(bounds) if dumped["recent"] is not None else Histogram(bounds)
    _absorb_histogram(current, dumped)


def _absorb_histogram(into: Histogram, dumped: dict[str, Any]) -> None:
    for i, count in enumerate(dumped["counts"]):
        into.counts[i] += count
    into.sum += dumped["sum"]
    into.count += sum(dumped["counts"])
    if isinstance(into, Timing) and dumped["recent"]:
        pooled = sorted([*into.recent, *(tuple(pair) for pair in dumped["recent"])])
        into.recent.clear()
        into.recent.extend(pooled[-SUMMARY_SAMPLES:])
