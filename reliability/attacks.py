"""Every attack the kit answers for, what must hold, and the tests that show it (run by the suite).

tests/reliability/test_attack_catalog.py checks that every test named here exists, so the catalog
cannot point at a test that was renamed or removed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attack:
    name: str
    holds: str
    tests: tuple[str, ...]


ATTACKS: tuple[Attack, ...] = (
    Attack(
        "JWT alg none",
        "refused: 3500, only algorithms with a configured key are enabled",
        (
            "tests/unit/server/test_tokens.py::test_alg_none_is_rejected",
            "tests/compat/test_bad_input.py::test_unsigned_token",
        ),
    ),
    Attack(
        "JWT alg confusion (HS256 signed with the RSA public key)",
        "refused: 3500; an honest RS256 token still connects",
        (
            "tests/reliability/test_attacks.py::test_alg_confusion_hs256_signed_with_the_rsa_public_key_is_refused",
            "tests/unit/server/test_tokens.py::test_algorithm_without_configured_key_is_rejected",
            "tests/unit/server/test_tokens_jwks.py::test_hmac_token_is_refused_when_jwks_is_set",
            "tests/unit/server/test_tokens_jwks.py::test_token_alg_must_match_key",
        ),
    ),
    Attack(
        "kid injection and JWKS endpoint abuse",
        "unknown or missing kid refused; template values with traversal refused; unsafe templates a "
        "config error; one JWKS request shared by concurrent verifications",
        (
            "tests/unit/server/test_tokens_jwks.py::test_unknown_kid_is_invalid_and_refetched",
            "tests/unit/server/test_tokens_jwks.py::test_missing_kid_is_invalid",
            "tests/unit/server/test_tokens_jwks.py::test_template_value_with_traversal_is_refused",
            "tests/unit/server/test_tokens_jwks.py::test_unsafe_endpoint_template_is_config_error",
            "tests/unit/server/test_tokens_jwks.py::test_concurrent_verifications_share_one_request",
        ),
    ),
    Attack(
        "expired and future tokens",
        "expired: error 109 (refresh), not yet valid (nbf): treated as expired, forged expired: 3500",
        (
            "tests/unit/server/test_tokens.py::test_expired_token",
            "tests/unit/server/test_tokens.py::test_nbf_in_future_counts_as_expired",
            "tests/unit/server/test_tokens.py::test_forged_expired_token_is_invalid_not_expired",
            "tests/compat/test_bad_input.py::test_expired_token",
            "tests/compat/test_bad_input.py::test_token_not_yet_valid",
        ),
    ),
    Attack(
        "subscription tokens for other channels and users",
        "refused: 3500, as Centrifugo",
        (
            "tests/reliability/test_attacks.py::test_subscription_tokens_of_another_channel_or_user_are_refused",
        ),
    ),
    Attack(
        "cross-site WebSocket hijacking (foreign Origin)",
        "refused (403) on every connection endpoint; CORS only for allowed origins",
        (
            "tests/compat/browser/test_browser_quickstart.py::test_page_from_another_origin_is_refused",
            "tests/compat/test_emulation.py::test_cors_follows_allowed_origins",
            "tests/compat/test_uni_websocket.py::test_connection_limit_and_origin_check",
        ),
    ),
    Attack(
        "API key brute force",
        "every guess 401, the bystander still served",
        ("tests/reliability/test_attacks.py::test_api_key_brute_force_gets_401_and_starves_no_one",),
    ),
    Attack(
        "oversized and deeply nested frames and bodies",
        "3501 / 413 / 400 with a message; JSON of any depth parsed without recursion limits",
        (
            "tests/compat/test_bad_input.py::test_frame_over_message_size_limit",
            "tests/compat/test_bad_input.py::test_malformed_json_frame",
            "tests/compat/test_bad_input.py::test_malformed_protobuf_frame",
            "tests/compat/test_deep_json.py::test_client_publication_of_any_depth_is_delivered",
            "tests/compat/test_deep_json.py::test_api_publish_depth",
            "tests/compat/test_deep_json.py::test_token_header_depth",
            "tests/reliability/test_fuzz.py::test_short_fuzz_run_is_clean",
        ),
    ),
    Attack(
        "slowloris (half-sent headers, trickling bodies, silent and idle connections)",
        "cut at Centrifugo's header (10 s), body (30 s) and idle deadlines; upgraded sockets unaffected",
        (
            "tests/unit/server/test_http_deadlines.py::test_half_sent_headers_are_cut",
            "tests/unit/server/test_http_deadlines.py::test_silent_connection_is_cut",
            "tests/unit/server/test_http_deadlines.py::test_trickling_body_is_cut",
            "tests/unit/server/test_http_deadlines.py::test_idle_keep_alive_connection_is_cut",
            "tests/unit/server/test_http_deadlines.py::test_upgraded_websocket_outlives_the_deadlines",
        ),
    ),
    Attack(
        "compression bombs",
        "permessage-deflate not negotiated while websocket.compression is off, where a compressed "
        "frame closes the connection; when on, inflating stops at decompressed_message_size_limit "
        "(10x message_size_limit by default, as Centrifugo) and closes that connection with 1009",
        (
            "tests/reliability/test_attacks.py::test_compressed_frames_are_not_negotiated_when_compression_is_off",
            "tests/reliability/test_attacks.py::test_a_decompression_bomb_is_bounded_when_compression_is_on",
            "tests/unit/transports/test_websocket_compression.py::"
            "test_a_decompression_bomb_is_cut_at_the_inflated_limit_with_1009",
            "tests/differential/test_compression.py::test_same_close_for_a_decompression_bomb",
        ),
    ),
    Attack(
        "deep tags filters",
        "bounded (64 levels, 1000 nodes), iterative matcher, 3501",
        (
            "tests/unit/protocol/test_tags_filter.py::test_depth_is_bounded",
            "tests/unit/protocol/test_tags_filter.py::test_node_count_is_bounded",
            "tests/unit/protocol/test_tags_filter.py::test_deep_tree_is_refused_without_exhausting_the_stack",
            "tests/compat/test_bad_input.py::test_tags_filter_too_deep",
        ),
    ),
    Attack(
        "huge batches",
        "the executor returns to the event loop every 64 commands: others are served meanwhile",
        ("tests/reliability/test_attacks.py::test_a_huge_api_batch_does_not_hold_the_event_loop",),
    ),
    Attack(
        "many subscriptions",
        "error 106 past client.channel_limit, the bystander still served",
        ("tests/reliability/test_attacks.py::test_a_flood_of_subscribe_commands_is_bounded",),
    ),
    Attack(
        "a client that never reads",
        "disconnected 3008 (slow) once its buffer passes the limit; others keep receiving",
        ("tests/compat/test_slow_client.py::test_slow_client_is_disconnected_and_others_keep_receiving",),
    ),
    Attack(
        "connection floods",
        "client.connection_rate_limit and client.connection_limit refuse the excess",
        (
            "tests/unit/server/test_connection_rate_limit.py::test_burst_then_one_per_second",
            "tests/compat/test_uni_websocket.py::test_connection_limit_and_origin_check",
        ),
    ),
)
