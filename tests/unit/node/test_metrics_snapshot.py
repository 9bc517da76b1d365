"""A Metrics snapshot, sent as JSON and added to another Metrics, adds up every kind of number: the
workers of ``rotary --workers N`` answer one scrape together this way.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import orjson

from rotary.node.metrics import Metrics


def _busy() -> Metrics:
    metrics = Metrics(recovered_publications=True)
    metrics.command("connect", 0.002)
    metrics.reply_error("subscribe", 103)
    metrics.message_sent("websocket", "push_publication", 300, 3)
    metrics.message_received("websocket", "publish", 40)
    metrics.connection_added(("websocket", "json", "js", "1"))
    metrics.recover(True, 2)
    metrics.broadcasts.observe(0.0001, 4)
    metrics.tags_filter_dropped += 5
    metrics.ping_pong("websocket", 0.01)
    metrics.api_command("http", "publish", 0.003)
    metrics.broker_sent.add(("control",))
    return metrics


def test_two_snapshots_add_up_to_twice_each_number() -> None:
    one = _busy()
    combined = Metrics()
    for _ in range(2):
        combined.absorb(orjson.loads(orjson.dumps(one.snapshot())))

    assert combined.commands["connect"].count == 2 and combined.commands["connect"].sum == 0.004
    assert combined.commands["connect"].counts == [2 * c for c in one.commands["connect"].counts]
    assert len(combined.commands["connect"].recent) == 2  # the summary pools both samples
    assert combined.reply_errors == {("subscribe", "103"): 2}
    assert combined.sent[("websocket", "push_publication")] == [6, 600]
    assert combined.received[("websocket", "publish")] == [2, 80]
    assert combined.connections_inflight == {("websocket", "json", "js", "1"): 2}
    assert combined.recovers == {("yes", "yes"): 2}
    assert combined.recovered_publications is not None and combined.recovered_publications.count == 2
    assert combined.broadcasts.count == 8
    assert combined.tags_filter_dropped == 10
    assert combined.ping_pongs["websocket"].count == 2
    assert combined.api_commands[("http", "publish")].count == 2
    assert combined.broker_sent[("control",)] == 2 and combined.broker_sent[("join",)] == 0
