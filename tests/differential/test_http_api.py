"""The HTTP server API of rotary and Centrifugo, request by request: results, errors, status codes.

Every method of ``POST /api/<method>``, the legacy ``POST /api``, and the ways a request can be
refused (method, key, body, params). See https://centrifugal.dev/docs/server/server_api.
"""

from __future__ import annotations

import pytest

from differential.conftest import Pair
from differential.runner import (
    Api,
    Closed,
    Cmd,
    Open,
    Pushes,
    Scenario,
    Step,
    alive,
    check,
    params,
    sub,
    token,
    with_known_differences,
    ws,
)

LONG = "chat:" + "x" * 80
LEGACY_FOLDED = '{"METHOD": "broadcast", "Params": {"channel\u017f": ["plain:kf5"], "data": {}}}'.encode()


def anonymous(conn: str = "a") -> list[Step]:
    """Opens ``conn`` and connects with a token whose ``sub`` is empty: an anonymous connection."""
    return [Open(conn), Cmd({"connect": {"token": token("")}}, conn)]


CLOSE_ROUND_TRIPS = 20
"""RPCs an API disconnect's close may take to reach the connection (Centrifugo closes it after
answering the API call); rotary refuses codes outside 3000-4999 and answers every one."""

SCENARIOS = [
    # Who may call, and how the request is read.
    Scenario("no-key", [Api("channels", {}, key=None)]),
    Scenario("wrong-key", [Api("channels", {}, key="nope")]),
    Scenario(
        "key-in-authorization",
        [Api("channels", {}, key=None, headers=(("Authorization", "apikey differential-api-key"),))],
    ),
    Scenario("key-in-query", [Api("channels", {}, key=None, query="api_key=differential-api-key")]),
    Scenario("get-method", [Api("channels", {}, http_method="GET")]),
    Scenario("get-without-key", [Api("channels", {}, key=None, http_method="GET")]),
    Scenario("put-method", [Api("publish", {}, http_method="PUT")]),
    Scenario("unknown-method", [Api("nosuchmethod", {})]),
    Scenario("unknown-method-without-key", [Api("nosuchmethod", {}, key=None)]),
    Scenario("unknown-method-get", [Api("publish/x", {}, http_method="GET")]),
    Scenario("pro-method", [Api("connections", {})]),
    Scenario(
        "map-methods-on-stream-channels",
        [
            Api("map_publish", {"channel": "plain:m", "key": "k", "data": {}}),
            Api("map_publish", {"channel": "nope:m", "key": "k"}),
            Api("map_read_state", {"channel": "chat:m", "limit": 1}),
            Api("map_stats", {}),
            Api("shared_poll_publish", {"channel": "plain:m", "key": "k", "version": 1}),
            Api("", raw=b'{"method": "MAP_CLEAR", "params": {"channel": "plain:m"}}'),
            Api("batch", {"commands": [{"map_remove": {"channel": "plain:m", "key": "k"}}]}),
        ],
    ),
    Scenario("bad-json", [Api("publish", raw=b"{not json")]),
    Scenario("empty-body", [Api("publish", raw=b"")]),
    Scenario("empty-body-channels", [Api("channels", raw=b"")]),
    Scenario("array-body", [Api("publish", raw=b"[]")]),
    Scenario("string-body", [Api("publish", raw=b'"x"')]),
    Scenario("null-body", [Api("channels", raw=b"null")]),
    Scenario("trailing-garbage", [Api("channels", raw=b"{} x")]),
    Scenario("unknown-field", [Api("publish", {"channel": "plain:uf", "data": {}, "nosuch": 1})]),
    Scenario("wrong-type-channel", [Api("publish", {"channel": 1, "data": {}})]),
    Scenario("wrong-type-tags", [Api("publish", {"channel": "plain:wt", "data": {}, "tags": [1]})]),
    Scenario(
        "transport-error-mode",
        [
            Api(
                "publish",
                {"channel": "nope:x", "data": {}},
                headers=(("X-Centrifugo-Error-Mode", "transport"),),
            )
        ],
    ),
    Scenario(
        "transport-error-mode-bad-request",
        [Api("publish", {"data": {}}, headers=(("X-Centrifugo-Error-Mode", "transport"),))],
    ),
    Scenario(
        "key-header-wrong-query-right",
        [Api("channels", {}, key="nope", query="api_key=differential-api-key")],
    ),
    Scenario(
        "key-header-and-authorization",
        [Api("channels", {}, key="nope", headers=(("Authorization", "apikey differential-api-key"),))],
    ),
    Scenario(
        "authorization-other-scheme",
        [Api("channels", {}, key=None, headers=(("Authorization", "bearer differential-api-key"),))],
    ),
    Scenario(
        "error-mode-header-other",
        [Api("publish", {"channel": "nope:x", "data": {}}, headers=(("X-Centrifugo-Error-Mode", "other"),))],
    ),
    Scenario(
        "transport-error-mode-not-available",
        [Api("history", {"channel": "plain:tm"}, headers=(("X-Centrifugo-Error-Mode", "transport"),))],
    ),
    Scenario(
        "transport-error-mode-batch",
        [
            Api(
                "batch",
                {"commands": [{"publish": {"channel": "nope:x", "data": {}}}]},
                headers=(("X-Centrifugo-Error-Mode", "transport"),),
            )
        ],
    ),
    Scenario("head-method", [Api("channels", {}, http_method="HEAD")]),
    Scenario("options-method", [Api("channels", {}, http_method="OPTIONS")]),
    # publish
    Scenario("publish", [Api("publish", {"channel": "plain:p1", "data": {"a": 1}})]),
    Scenario(
        "publish-history",
        [
            Api("publish", {"channel": "chat:p2", "data": {"a": 1}}),
            Api("publish", {"channel": "chat:p2", "data": [1]}),
        ],
    ),
    Scenario("publish-no-channel", [Api("publish", {"data": {}})]),
    Scenario("publish-empty-channel", [Api("publish", {"channel": "", "data": {}})]),
    Scenario("publish-no-data", [Api("publish", {"channel": "plain:p3"})]),
    Scenario("publish-null-data", [Api("publish", {"channel": "plain:p4", "data": None})]),
    Scenario("publish-string-data", [Api("publish", {"channel": "plain:p5", "data": "text"})]),
    Scenario("publish-b64data", [Api("publish", {"channel": "plain:p6", "b64data": "aGk="})]),
    Scenario("publish-bad-b64data", [Api("publish", {"channel": "plain:p7", "b64data": "!!"})]),
    Scenario(
        "publish-data-and-b64data", [Api("publish", {"channel": "plain:p8", "data": {}, "b64data": "aGk="})]
    ),
    Scenario("publish-unknown-namespace", [Api("publish", {"channel": "nope:x", "data": {}})]),
    Scenario("publish-too-long-channel", [Api("publish", {"channel": LONG, "data": {}})]),
    Scenario(
        "publish-tags-skip-history",
        [
            Api("publish", {"channel": "chat:p9", "data": {}, "tags": {"k": "v"}, "skip_history": True}),
            Api("history", {"channel": "chat:p9", "limit": -1}),
        ],
    ),
    Scenario(
        "publish-idempotency",
        [
            Api("publish", {"channel": "chat:p10", "data": {"n": 1}, "idempotency_key": "k1"}),
            Api("publish", {"channel": "chat:p10", "data": {"n": 2}, "idempotency_key": "k1"}),
            Api("history", {"channel": "chat:p10", "limit": -1}),
        ],
    ),
    Scenario("publish-delta", [Api("publish", {"channel": "delta:p11", "data": {"a": 1}, "delta": True})]),
    Scenario(
        "publish-version",
        [
            Api("publish", {"channel": "chat:p12", "data": {"a": 1}, "version": 2}),
            Api("publish", {"channel": "chat:p12", "data": {"a": 2}, "version": 1}),
            Api("history", {"channel": "chat:p12", "limit": -1}),
        ],
    ),
    Scenario(
        "publish-number-forms",
        [
            Api(
                "publish",
                raw=b'{"channel": "chat:nf", '
                b'"data": {"a": 1e5, "b": 1.50, "c": -0, "d": 1E-2, "e": "\\u00e9"}}',
            ),
            Api("history", {"channel": "chat:nf", "limit": -1}),
        ],
    ),
    Scenario(
        "publish-big-integer",
        [
            Api("publish", raw=b'{"channel": "chat:bi", "data": {"n": 123456789012345678901234567890}}'),
            Api("history", {"channel": "chat:bi", "limit": -1}),
        ],
    ),
    Scenario("publish-deep-data", [Api("publish", {"channel": "plain:dd", "data": [[[[[[[[[[1]]]]]]]]]]})]),
    # broadcast
    Scenario("broadcast", [Api("broadcast", {"channels": ["plain:b1", "chat:b1"], "data": {"x": 1}})]),
    Scenario("broadcast-no-channels", [Api("broadcast", {"channels": [], "data": {}})]),
    Scenario("broadcast-no-data", [Api("broadcast", {"channels": ["plain:b2"]})]),
    Scenario(
        "broadcast-bad-channel", [Api("broadcast", {"channels": ["plain:b3", "nope:b3", ""], "data": {}})]
    ),
    # Keys match field names case-insensitively by Go's Unicode folding: the long s (U+017F) is an
    # "s" and the Kelvin sign a "k"; a dotted capital I is no "i".
    Scenario(
        "keys-folded",
        [
            Api("publish", {"CHANNEL": "plain:kf1", "Data": {}, "idempotency_\u212aey": "kf1"}),
            Api("broadcast", {"channel\u017f": ["plain:kf2"], "data": {}}),
            Api("publish", {"chann\u0130l": "plain:kf3", "data": {}}),
            Api(
                "batch",
                {"commands": [{"PUBLISH": {"channel": "plain:kf4", "data": {}}}, {"Broadca\u017ft": {}}]},
            ),
            Api("", raw=LEGACY_FOLDED),
        ],
    ),
    # subscribe / unsubscribe / disconnect / refresh of users not connected
    Scenario("subscribe-nobody", [Api("subscribe", {"user": "nobody", "channel": "chat:s1"})]),
    Scenario("subscribe-no-user", [Api("subscribe", {"channel": "chat:s2"})]),
    Scenario("subscribe-no-channel", [Api("subscribe", {"user": "u"})]),
    Scenario("subscribe-unknown-namespace", [Api("subscribe", {"user": "u", "channel": "nope:s3"})]),
    Scenario("unsubscribe-nobody", [Api("unsubscribe", {"user": "nobody", "channel": "chat:s4"})]),
    Scenario("unsubscribe-no-user", [Api("unsubscribe", {"channel": "chat:s4"})]),
    Scenario("unsubscribe-no-channel", [Api("unsubscribe", {"user": "u"})]),
    Scenario("disconnect-nobody", [Api("disconnect", {"user": "nobody"})]),
    Scenario("disconnect-no-user", [Api("disconnect", {})]),
    Scenario(
        "disconnect-bad-code",
        [Api("disconnect", {"user": "nobody", "disconnect": {"code": 1000, "reason": "x"}})],
    ),
    Scenario(
        "disconnect-code-1000-connected",
        [
            *ws(user="jack"),
            Api("disconnect", {"user": "jack", "disconnect": {"code": 1000, "reason": "x"}}),
            alive(until_closed=CLOSE_ROUND_TRIPS),
        ],
    ),
    Scenario(
        "disconnect-code-2000-connected",
        [
            *ws(user="kate"),
            Api("disconnect", {"user": "kate", "disconnect": {"code": 2000, "reason": "y"}}),
            alive(until_closed=CLOSE_ROUND_TRIPS),
        ],
    ),
    Scenario("refresh-nobody", [Api("refresh", {"user": "nobody", "expired": True})]),
    Scenario("refresh-no-user", [Api("refresh", {})]),
    # presence / presence_stats / history / history_remove / channels / info
    Scenario("presence-empty", [Api("presence", {"channel": "chat:pr1"})]),
    Scenario("presence-not-enabled", [Api("presence", {"channel": "plain:pr2"})]),
    Scenario("presence-no-channel", [Api("presence", {})]),
    Scenario("presence-unknown-namespace", [Api("presence", {"channel": "nope:pr"})]),
    Scenario("presence-stats-empty", [Api("presence_stats", {"channel": "chat:pr3"})]),
    Scenario("presence-stats-not-enabled", [Api("presence_stats", {"channel": "plain:pr4"})]),
    Scenario("history-empty", [Api("history", {"channel": "chat:h1"})]),
    Scenario("history-not-enabled", [Api("history", {"channel": "plain:h2"})]),
    Scenario("history-no-channel", [Api("history", {})]),
    Scenario(
        "history-paging",
        [
            *[Api("publish", {"channel": "chat:h3", "data": {"n": n}}) for n in range(4)],
            Api("history", {"channel": "chat:h3", "limit": 2}),
            Api("history", {"channel": "chat:h3", "limit": 2, "reverse": True}),
            Api("history", {"channel": "chat:h3", "limit": -1, "since": {"offset": 2, "epoch": ""}}),
            Api("history", {"channel": "chat:h3", "limit": 0}),
        ],
    ),
    Scenario(
        "history-overflow",
        [
            *[Api("publish", {"channel": "chat:h4", "data": {"n": n}}) for n in range(7)],
            Api("history", {"channel": "chat:h4", "limit": -1}),
        ],
    ),
    Scenario(
        "history-bad-epoch",
        [
            Api("publish", {"channel": "chat:h5", "data": {}}),
            Api("history", {"channel": "chat:h5", "limit": -1, "since": {"offset": 0, "epoch": "bad"}}),
        ],
    ),
    Scenario(
        "history-future-offset",
        [
            Api("publish", {"channel": "chat:h6", "data": {}}),
            Api("history", {"channel": "chat:h6", "limit": -1, "since": {"offset": 5, "epoch": ""}}),
        ],
    ),
    Scenario(
        "history-remove",
        [
            Api("publish", {"channel": "chat:h7", "data": {}}),
            Api("history_remove", {"channel": "chat:h7"}),
            Api("history", {"channel": "chat:h7", "limit": -1}),
        ],
    ),
    Scenario("history-remove-not-enabled", [Api("history_remove", {"channel": "plain:h8"})]),
    Scenario("history-remove-no-channel", [Api("history_remove", {})]),
    Scenario("channels-none", [Api("channels", {"pattern": "nothing-here*"})]),
    *[
        Scenario(f"channels-pattern-{n}", [Api("channels", {"pattern": p})])
        for n, p in enumerate(
            [
                "[",
                "a[b",
                "[]",
                "[a-]",
                "[z-a]",
                "[a-cx]",
                "[!]",
                "x[a]y[",
                "\\[",
                "{",
                "[!a]",
                "[ab-c]",
                "[-a]",
                "[[]",
                "a\\",
                "[a\\]]",
            ]
        )
    ],
    Scenario(
        "channels-pattern-match",
        [
            *ws(sub("chat:cp1"), sub("chat:cp2"), sub("plain:cp3"), user="cp"),
            Api("channels", {"pattern": "chat:cp*"}),
            Api("channels", {"pattern": "chat:cp?"}),
            Api("channels", {"pattern": "chat:cp[12]"}),
            Api("channels", {"pattern": "chat:cp[!1]"}),
            Api("channels", {"pattern": "*:cp3"}),
        ],
    ),
    Scenario(
        "channels-pattern-braces",
        [
            *ws(sub("chat:cb1"), sub("chat:cb2"), user="cb"),
            Api("channels", {"pattern": "chat:{cb1,zz}"}),
        ],
    ),
    Scenario("info", [Api("info", {})]),
    # batch
    Scenario(
        "batch",
        [
            Api(
                "batch",
                {
                    "commands": [
                        {"publish": {"channel": "chat:bt1", "data": {"x": 1}}},
                        {"history": {"channel": "chat:bt1", "limit": -1}},
                        {"presence": {"channel": "plain:bt1"}},
                        {"publish": {"channel": "nope:bt1", "data": {}}},
                    ]
                },
            )
        ],
    ),
    Scenario(
        "batch-parallel",
        [
            Api(
                "batch",
                {
                    "parallel": True,
                    "commands": [
                        {"publish": {"channel": "plain:bt2", "data": {}}},
                        {"broadcast": {"channels": ["plain:bt2"], "data": {}}},
                    ],
                },
            )
        ],
    ),
    Scenario("batch-empty", [Api("batch", {"commands": []})]),
    Scenario(
        "batch-unknown-command",
        [Api("batch", {"commands": [{"nosuch": {}}, {"channels": {"pattern": "x"}}]})],
    ),
    Scenario("batch-empty-command", [Api("batch", {"commands": [{}]})]),
    Scenario(
        "batch-two-methods",
        [
            Api(
                "batch",
                {"commands": [{"channels": {"pattern": "x"}, "presence_stats": {"channel": "chat:bt3"}}]},
            )
        ],
    ),
    Scenario("batch-bad-params", [Api("batch", {"commands": [{"publish": {"data": {}}}]})]),
    # legacy POST /api
    Scenario(
        "legacy", [Api("", raw=b'{"method": "publish", "params": {"channel": "plain:l1", "data": {}}}')]
    ),
    Scenario(
        "legacy-lines",
        [
            Api(
                "",
                raw=b'{"method": "publish", "params": {"channel": "plain:l2", "data": {}}}\n'
                b'{"method": "history", "params": {"channel": "plain:l2"}}',
            )
        ],
    ),
    Scenario("legacy-unknown-method", [Api("", raw=b'{"method": "nosuch", "params": {}}')]),
    Scenario("legacy-bad-json", [Api("", raw=b"{bad")]),
    Scenario("legacy-empty", [Api("", raw=b"")]),
    Scenario(
        "legacy-bad-line-in-middle",
        [
            Api(
                "",
                raw=b'{"method": "publish", "params": {"channel": "chat:l3", "data": {}}}\n{bad\n'
                b'{"method": "history", "params": {"channel": "chat:l3"}}',
            ),
            Api("history", {"channel": "chat:l3"}),
        ],
    ),
    Scenario(
        "legacy-error-in-command",
        [Api("", raw=b'{"method": "publish", "params": {"channel": "nope:l4", "data": {}}}')],
    ),
    Scenario("legacy-missing-params", [Api("", raw=b'{"method": "channels"}')]),
    Scenario("legacy-get", [Api("", raw=b"", http_method="GET")]),
    Scenario("legacy-no-key", [Api("", raw=b'{"method": "info", "params": {}}', key=None)]),
    # Methods acting on connected clients.
    Scenario(
        "presence-with-clients",
        [
            *ws(sub("chat:w1"), user="alice"),
            Api("presence", {"channel": "chat:w1"}),
            Api("presence_stats", {"channel": "chat:w1"}),
            Api("channels", {"pattern": "chat:w1"}),
        ],
    ),
    Scenario(
        "api-subscribe-connected",
        [
            *ws(user="bob"),
            Api("subscribe", {"user": "bob", "channel": "chat:w2", "data": {"hello": 1}}),
            Pushes(1),
            Api("publish", {"channel": "chat:w2", "data": {"n": 1}}),
            Pushes(1),
            Api("unsubscribe", {"user": "bob", "channel": "chat:w2"}),
            Pushes(1),
        ],
    ),
    Scenario(
        "api-subscribe-recover",
        [
            Api("publish", {"channel": "chat:w3", "data": {"n": 1}}),
            *ws(user="carol"),
            Api(
                "subscribe",
                {"user": "carol", "channel": "chat:w3", "recover_since": {"offset": 0, "epoch": ""}},
            ),
            Pushes(1),
        ],
    ),
    Scenario(
        "api-disconnect-connected",
        [
            *ws(user="dave"),
            Api("disconnect", {"user": "dave", "disconnect": {"code": 4500, "reason": "bye"}}),
            Closed(),
        ],
    ),
    Scenario("api-disconnect-default", [*ws(user="erin"), Api("disconnect", {"user": "erin"}), Closed()]),
    Scenario(
        "api-disconnect-whitelist",
        [
            *ws(user="frank"),
            Open("b"),
            Cmd({"connect": {"token": token("frank")}}, "b"),
            Api("disconnect", {"user": "frank", "whitelist": ["nobody"]}),
            Closed("a"),
            Closed("b"),
        ],
    ),
    # User "" is the anonymous user: Centrifugo's hub keeps anonymous connections under it, so the
    # user-targeted methods reach them, and only them (an authenticated connection stays).
    Scenario(
        "api-disconnect-anonymous",
        [*anonymous(), *ws(user="lara", conn="b"), Api("disconnect", {"user": ""}), Closed("a"), alive("b")],
    ),
    Scenario(
        "api-refresh-anonymous", [*anonymous(), Api("refresh", {"user": "", "expired": True}), Closed()]
    ),
    Scenario(
        "api-subscribe-unsubscribe-anonymous",
        [
            *anonymous(),
            *ws(user="mona", conn="b"),
            Api("subscribe", {"user": "", "channel": "chat:anon"}),
            Pushes(1),
            Api("presence", {"channel": "chat:anon"}),
            Cmd({"presence": {"channel": "chat:anon"}}),
            Api("unsubscribe", {"user": "", "channel": "chat:anon"}),
            Pushes(1),
            alive("b"),
        ],
    ),
    Scenario(
        "api-refresh-expired", [*ws(user="gina"), Api("refresh", {"user": "gina", "expired": True}), Closed()]
    ),
    Scenario(
        "api-refresh-expire-at",
        [
            *ws(user="hank"),
            Api("refresh", {"user": "hank", "expire_at": 4102444800, "info": {"i": 1}}),
            alive(),
        ],
    ),
    Scenario(
        "api-publish-to-subscriber",
        [
            *ws(sub("tags:w4", recover=True), user="ivan"),
            Api("publish", {"channel": "tags:w4", "data": {"n": 1}, "tags": {"t": "1"}}),
            Pushes(1),
            Api("broadcast", {"channels": ["tags:w4"], "data": {"n": 2}}),
            Pushes(1),
        ],
    ),
]


KNOWN = {}
SCENARIOS = with_known_differences(SCENARIOS, KNOWN)


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS, ws_protocols=False))
async def test_http_api(pair: Pair, scenario: Scenario, protocol: str) -> None:
    await check(pair.centrifugo, pair.rotary, scenario, protocol, scenario.name)
