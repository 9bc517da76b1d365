"""rotary's exposition with one observation in every family, so that the families that appear only
after traffic are there too: for the checks that the dashboard and Centrifugo's families match it.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import pytest

from rotary.node.metrics import Metrics
from rotary.node.node import Node
from rotary.server.metrics.endpoint import Scrapes, process_families
from rotary.server.metrics.families import collect
from rotary.server.metrics.text import Family


def filled_families() -> list[Family]:
    metrics = Metrics(recovered_publications=True)
    node = Node(metrics=metrics)
    labels = ("websocket", "", "unnamed", "unversioned")
    metrics.command("connect", 0.001)
    metrics.reply_error("subscribe", 103)
    metrics.message_sent("websocket", "push_publication", 10)
    metrics.message_received("websocket", "publish", 10)
    metrics.connection_added(labels)
    metrics.subscription_added("unnamed")
    metrics.server_disconnect("websocket", 3001)
    metrics.server_unsubscribe(2500)
    metrics.recover(True, 2)
    metrics.action("history")
    metrics.broadcasts.observe(0.0001)
    metrics.tags_filter_dropped += 1
    metrics.broker_suppressed.add(("idempotency",))
    metrics.ping_pong("websocket", 0.001)
    metrics.survey("channels", 0.001)
    metrics.api_command("http", "publish", 0.001)
    metrics.api_error("http", "publish", 107)
    metrics.http_request("/api/publish", "POST", 200)
    metrics.connection_limit += 1
    with pytest.raises(ConnectionError), metrics.proxy_call("http", "connect", "default"):
        raise ConnectionError
    return [*collect(node, metrics, 1, node.info()), *process_families(), *Scrapes().families()]
