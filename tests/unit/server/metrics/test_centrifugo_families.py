"""Every metric family Centrifugo v6.9.1 OSS defines is exported by rotary with the same type, or
listed in ``NOT_EXPORTED`` with the reason.

``CENTRIFUGO_FAMILIES`` is read off centrifuge's ``metrics.go`` (the version Centrifugo v6.9.1's
go.mod pins) and Centrifugo's ``internal/metrics/metrics.go``, namespace ``centrifugo``. The
differential test (tests/differential/test_metrics.py) compares the label names and the counts of
the families both servers export after the same SDK traffic; this one covers the families that no
such traffic can fill in Centrifugo (engines and features rotary does not build).
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

from helpers.filled_metrics import filled_families

CENTRIFUGO_FAMILIES: dict[str, str] = {
    # centrifuge metrics.go: clients and transports
    "centrifugo_client_connections_accepted": "counter",
    "centrifugo_client_connections_inflight": "gauge",
    "centrifugo_client_subscriptions_accepted": "counter",
    "centrifugo_client_subscriptions_inflight": "gauge",
    "centrifugo_client_command_duration_seconds": "summary",
    "centrifugo_client_command_duration_seconds_histogram": "histogram",
    "centrifugo_client_num_reply_errors": "counter",
    "centrifugo_client_num_server_unsubscribes": "counter",
    "centrifugo_client_num_server_disconnects": "counter",
    "centrifugo_client_recover": "counter",
    "centrifugo_client_recovered_publications": "histogram",
    "centrifugo_client_ping_pong_duration_seconds": "histogram",
    "centrifugo_transport_messages_sent": "counter",
    "centrifugo_transport_messages_sent_size": "counter",
    "centrifugo_transport_messages_received": "counter",
    "centrifugo_transport_messages_received_size": "counter",
    "centrifugo_transport_outgoing_close_count": "counter",
    # centrifuge metrics.go: the node
    "centrifugo_node_action_count": "counter",
    "centrifugo_node_num_clients": "gauge",
    "centrifugo_node_num_users": "gauge",
    "centrifugo_node_num_subscriptions": "gauge",
    "centrifugo_node_num_nodes": "gauge",
    "centrifugo_node_build": "gauge",
    "centrifugo_node_num_channels": "gauge",
    "centrifugo_node_survey_duration_seconds": "summary",
    "centrifugo_node_survey_duration_seconds_histogram": "histogram",
    "centrifugo_node_messages_sent_count": "counter",
    "centrifugo_node_messages_received_count": "counter",
    "centrifugo_node_tags_filter_dropped_publications": "counter",
    "centrifugo_node_pub_sub_lag_seconds": "histogram",
    "centrifugo_node_broadcast_duration_seconds": "histogram",
    # centrifuge metrics.go: brokers
    "centrifugo_broker_publish_suppressed_count": "counter",
    "centrifugo_broker_redis_pub_sub_errors": "counter",
    "centrifugo_broker_redis_pub_sub_dropped_messages": "counter",
    "centrifugo_broker_redis_pub_sub_buffered_messages": "gauge",
    "centrifugo_map_broker_publish_suppressed_count": "counter",
    "centrifugo_map_broker_remove_suppressed_count": "counter",
    "centrifugo_map_broker_cleanup_lag_seconds": "gauge",
    "centrifugo_map_broker_cleanup_removed_count": "counter",
    "centrifugo_map_broker_cleanup_errors_count": "counter",
    "centrifugo_map_broker_redis_pub_sub_errors": "counter",
    "centrifugo_map_broker_redis_pub_sub_dropped_messages": "counter",
    "centrifugo_map_broker_redis_pub_sub_buffered_messages": "gauge",
    # centrifuge metrics.go: shared poll
    "centrifugo_shared_poll_cycle_duration_seconds": "histogram",
    "centrifugo_shared_poll_cycle_work_duration_seconds": "histogram",
    "centrifugo_shared_poll_handler_duration_seconds": "histogram",
    "centrifugo_shared_poll_sem_wait_duration_seconds": "histogram",
    "centrifugo_shared_poll_handler_error_count": "counter",
    "centrifugo_shared_poll_items_count": "counter",
    "centrifugo_shared_poll_publish_count": "counter",
    "centrifugo_shared_poll_notify_count": "counter",
    "centrifugo_shared_poll_dropped_notify_count": "counter",
    "centrifugo_shared_poll_num_channels": "gauge",
    "centrifugo_shared_poll_num_keys": "gauge",
    # Centrifugo internal/metrics/metrics.go
    "centrifugo_proxy_duration_seconds": "summary",
    "centrifugo_proxy_duration_seconds_histogram": "histogram",
    "centrifugo_proxy_errors": "counter",
    "centrifugo_proxy_inflight_requests": "gauge",
    "centrifugo_api_command_errors_total": "counter",
    "centrifugo_api_command_duration_seconds": "summary",
    "centrifugo_api_command_duration_seconds_histogram": "histogram",
    "centrifugo_api_rpc_duration_seconds": "summary",
    "centrifugo_api_rpc_duration_seconds_histogram": "histogram",
    "centrifugo_consumers_messages_processed_total": "counter",
    "centrifugo_consumers_errors_total": "counter",
    "centrifugo_shared_poll_proxy_request_items": "histogram",
    "centrifugo_shared_poll_proxy_response_items": "histogram",
    "centrifugo_node_client_connection_limit": "counter",
    "centrifugo_node_incoming_http_requests_total": "counter",
    "centrifugo_broker_postgres_cleanup_removed_total": "counter",
    "centrifugo_broker_postgres_outbox_cursor_lag_seconds": "gauge",
    "centrifugo_broker_postgres_partitions": "gauge",
    "centrifugo_map_broker_postgres_outbox_cursor_lag_seconds": "gauge",
    "centrifugo_map_broker_postgres_partitions": "gauge",
}
"""Centrifugo v6.9.1 OSS's metric families and their types."""

_MAP = "map subscriptions (the map broker) are not built: their keys are refused"
_SHARED_POLL = "shared poll subscriptions are not built: their keys are refused"
_POSTGRES = "the PostgreSQL broker is not built: engine type postgres is refused"

NOT_EXPORTED: dict[str, str] = {
    "centrifugo_client_subscriptions_accepted": (
        "registered but never counted by centrifuge in v6.9.1, so Centrifugo never exports a series"
    ),
    "centrifugo_api_rpc_duration_seconds": (
        "times the server API's RPC extensions; Centrifugo OSS registers none (every API rpc is 'not "
        "found' before the timing), so it never exports a series"
    ),
    "centrifugo_api_rpc_duration_seconds_histogram": "as centrifugo_api_rpc_duration_seconds",
    "centrifugo_node_pub_sub_lag_seconds": (
        "publications carry no broker publish time in rotary's engines, so the lag cannot be measured"
    ),
    "centrifugo_broker_redis_pub_sub_errors": (
        "counts errors of centrifuge's Redis PUB/SUB shard workers; rotary's Redis engine reconnects "
        "without counting them"
    ),
    "centrifugo_broker_redis_pub_sub_dropped_messages": (
        "centrifuge's Redis PUB/SUB buffer drops messages when full; rotary's Redis engine reads "
        "PUB/SUB without such a buffer and drops nothing"
    ),
    "centrifugo_broker_redis_pub_sub_buffered_messages": (
        "as centrifugo_broker_redis_pub_sub_dropped_messages"
    ),
    "centrifugo_map_broker_publish_suppressed_count": _MAP,
    "centrifugo_map_broker_remove_suppressed_count": _MAP,
    "centrifugo_map_broker_cleanup_lag_seconds": _MAP,
    "centrifugo_map_broker_cleanup_removed_count": _MAP,
    "centrifugo_map_broker_cleanup_errors_count": _MAP,
    "centrifugo_map_broker_redis_pub_sub_errors": _MAP,
    "centrifugo_map_broker_redis_pub_sub_dropped_messages": _MAP,
    "centrifugo_map_broker_redis_pub_sub_buffered_messages": _MAP,
    "centrifugo_map_broker_postgres_outbox_cursor_lag_seconds": _MAP,
    "centrifugo_map_broker_postgres_partitions": _MAP,
    "centrifugo_shared_poll_cycle_duration_seconds": _SHARED_POLL,
    "centrifugo_shared_poll_cycle_work_duration_seconds": _SHARED_POLL,
    "centrifugo_shared_poll_handler_duration_seconds": _SHARED_POLL,
    "centrifugo_shared_poll_sem_wait_duration_seconds": _SHARED_POLL,
    "centrifugo_shared_poll_handler_error_count": _SHARED_POLL,
    "centrifugo_shared_poll_items_count": _SHARED_POLL,
    "centrifugo_shared_poll_publish_count": _SHARED_POLL,
    "centrifugo_shared_poll_notify_count": _SHARED_POLL,
    "centrifugo_shared_poll_dropped_notify_count": _SHARED_POLL,
    "centrifugo_shared_poll_num_channels": _SHARED_POLL,
    "centrifugo_shared_poll_num_keys": _SHARED_POLL,
    "centrifugo_shared_poll_proxy_request_items": _SHARED_POLL,
    "centrifugo_shared_poll_proxy_response_items": _SHARED_POLL,
    "centrifugo_consumers_messages_processed_total": "async consumers are not built: their keys are refused",
    "centrifugo_consumers_errors_total": "async consumers are not built: their keys are refused",
    "centrifugo_broker_postgres_cleanup_removed_total": _POSTGRES,
    "centrifugo_broker_postgres_outbox_cursor_lag_seconds": _POSTGRES,
    "centrifugo_broker_postgres_partitions": _POSTGRES,
}
"""Centrifugo's families rotary does not export, with the reason."""


def test_every_centrifugo_family_is_exported_with_its_type_or_excused() -> None:
    ours = {family.name: family.type for family in filled_families()}
    missing = sorted(n for n in CENTRIFUGO_FAMILIES if n not in ours and n not in NOT_EXPORTED)
    assert missing == []
    wrong_type = {n: (t, ours[n]) for n, t in CENTRIFUGO_FAMILIES.items() if n in ours and ours[n] != t}
    assert wrong_type == {}
    excused_but_exported = sorted(n for n in NOT_EXPORTED if n in ours)
    assert excused_but_exported == []
    assert sorted(set(NOT_EXPORTED) - set(CENTRIFUGO_FAMILIES)) == []


def test_rotary_exports_no_centrifugo_named_family_centrifugo_lacks() -> None:
    ours = {family.name for family in filled_families()}
    assert sorted(n for n in ours if n.startswith("centrifugo_") and n not in CENTRIFUGO_FAMILIES) == []
