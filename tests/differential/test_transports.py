"""The transports beyond the WebSocket side by side: unidirectional WebSocket, SSE and HTTP streaming,
and the bidirectional emulation (HTTP streaming and SSE with ``POST /emulation``).

Both servers start from one config enabling every transport but uni_grpc (it would need a port of
its own). ``uni_sse`` answers a refused connect with an HTTP status
(``connect_code_to_http_response``), ``uni_http_stream`` does not, so both ways are compared.
See https://centrifugal.dev/docs/transports/overview.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from differential.conftest import CONFIG, Pair
from differential.runner import (
    Api,
    Closed,
    Events,
    Http,
    Open,
    Pushes,
    Scenario,
    Send,
    check,
    encode_command,
    params,
    token,
)

GOOD = "http://good.example"
EVIL = "http://evil.example"
ORIGIN = (("Origin", GOOD),)
TOO_LARGE = b"x" * 70000
"""Past every ``max_request_body_size`` (65536 by default)."""


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    transforms = [{"code": 3500, "to": {"status_code": 403, "body": "forbidden by transform"}}]
    return {
        **CONFIG,
        "client": {**CONFIG["client"], "allowed_origins": [GOOD]},
        "uni_websocket": {"enabled": True},
        "uni_sse": {
            "enabled": True,
            "connect_code_to_http_response": {"enabled": True, "transforms": transforms},
        },
        "uni_http_stream": {"enabled": True},
        "http_stream": {"enabled": True},
        "sse": {"enabled": True},
        "init": {"enabled": True},
    }


def request(user: str, **claims: Any) -> dict[str, Any]:
    """A connect request with a token for ``user``."""
    return {"token": token(user, **claims)}


def cf_connect(body: Any) -> str:
    return "cf_connect=" + quote(json.dumps(body))


def command_lines(*commands: dict[str, Any]) -> str:
    return "\n".join(json.dumps(c) for c in commands)


def uni_ws(user: str, **claims: Any) -> Open:
    return Open(path="/connection/uni_websocket", query=cf_connect(request(user, **claims)), headers=ORIGIN)


def publish(channel: str) -> Api:
    return Api("publish", {"channel": channel, "data": {"text": "hi"}})


UNI_SSE_POST = Scenario(
    "uni-sse-post",
    [
        Http(
            "/connection/uni_sse",
            "POST",
            raw=json.dumps(request("tssep")).encode(),
            headers=ORIGIN,
            stream="s",
            events=1,
        )
    ],
)

SSE_POST = Scenario(
    "sse-post",
    [
        Http(
            "/connection/sse",
            "POST",
            raw=command_lines({"id": 1, "connect": request("essep")}).encode(),
            headers=ORIGIN,
            stream="s",
            events=1,
        )
    ],
)

UNI_WS = "/connection/uni_websocket"

UNI_WEBSOCKET = [
    Scenario(
        "uni-ws-cf-connect",
        [uni_ws("tw1", channels=["plain:tw1"]), Pushes(1), publish("plain:tw1"), Pushes(1)],
    ),
    Scenario(
        "uni-ws-first-message",
        [
            Open(path="/connection/uni_websocket", headers=ORIGIN),
            Send(json.dumps(request("tw2", channels=["plain:tw2"]))),
            Pushes(1),
            publish("plain:tw2"),
            Pushes(1),
        ],
    ),
    Scenario(
        "uni-ws-batch-one-message-per-push",
        [
            uni_ws("tw6", channels=["plain:tw6"]),
            Pushes(1),
            Api(
                "batch",
                {"commands": [{"publish": {"channel": "plain:tw6", "data": {"n": n}}} for n in range(3)]},
            ),
            Pushes(3),
        ],
    ),
    Scenario(
        "uni-ws-api-disconnect",
        [uni_ws("tw3"), Pushes(1), Api("disconnect", {"user": "tw3"}), Closed()],
    ),
    Scenario(
        "uni-ws-later-messages-ignored",
        [uni_ws("tw5", channels=["plain:tw5"]), Pushes(1), Send("garbage"), publish("plain:tw5"), Pushes(1)],
    ),
    Scenario(
        "uni-ws-bad-cf-connect", [Open(path=UNI_WS, query="cf_connect=%7Bnot", headers=ORIGIN), Closed()]
    ),
    Scenario("uni-ws-binary-first-message", [Open(path=UNI_WS, headers=ORIGIN), Send(b"\x01\x02"), Closed()]),
    Scenario(
        "uni-ws-too-large-first-message", [Open(path=UNI_WS, headers=ORIGIN), Send("x" * 70000), Closed()]
    ),
    Scenario("uni-ws-foreign-origin", [Open(path="/connection/uni_websocket", headers=(("Origin", EVIL),))]),
    Scenario(
        "uni-ws-bad-connect-request",
        [Open(path="/connection/uni_websocket", headers=ORIGIN), Send("{not json"), Closed()],
    ),
    Scenario(
        "uni-ws-bad-token",
        [
            Open(path="/connection/uni_websocket", query=cf_connect({"token": token("tw4", "x" * 40)})),
            Closed(),
        ],
    ),
]


def uni_stream_scenarios(kind: str, method: str) -> list[Scenario]:
    """The same requests to ``/connection/uni_<kind>``; ``method`` carries the connect request."""
    path = f"/connection/uni_{kind}"

    def connecting(body: Any, headers: tuple[tuple[str, str], ...] = ORIGIN, **options: Any) -> Http:
        if method == "GET":
            return Http(path, "GET", query=cf_connect(body), headers=headers, **options)
        return Http(path, "POST", raw=json.dumps(body).encode(), headers=headers, **options)

    user = f"t{kind}"
    return [
        Scenario(f"uni-{kind}-connect", [connecting(request(f"{user}1"), stream="s", events=1)]),
        Scenario(
            f"uni-{kind}-publication",
            [
                connecting(request(f"{user}2", channels=[f"plain:{user}2"]), stream="s", events=1),
                publish(f"plain:{user}2"),
                Events(1),
                Api("disconnect", {"user": f"{user}2"}),
                Events(2),
            ],
        ),
        Scenario(
            f"uni-{kind}-foreign-origin",
            [connecting(request(f"{user}3"), headers=(("Origin", EVIL),), stream="s", events=1)],
        ),
        Scenario(
            f"uni-{kind}-no-origin", [connecting(request(f"{user}4"), headers=(), stream="s", events=1)]
        ),
        Scenario(
            f"uni-{kind}-http10",
            [
                connecting(
                    request(f"{user}8", channels=[f"plain:{user}8"]), stream="s", events=1, http10=True
                ),
                publish(f"plain:{user}8"),
                Api("disconnect", {"user": f"{user}8"}),
                Events(3),
            ],
        ),
        Scenario(f"uni-{kind}-no-request", [Http(path, method, headers=ORIGIN, stream="s", events=2)]),
        Scenario(
            f"uni-{kind}-client-name",
            [connecting({**request(f"{user}7"), "name": "probe", "version": "1.2"}, stream="s", events=1)],
        ),
        Scenario(
            f"uni-{kind}-bad-request",
            [Http(path, method, query="cf_connect=%7Bnot", raw=b"{not", headers=ORIGIN)],
        ),
        Scenario(f"uni-{kind}-other-method", [Http(path, "PUT", headers=ORIGIN)]),
        Scenario(f"uni-{kind}-too-large", [Http(path, "POST", raw=TOO_LARGE, headers=ORIGIN)]),
        Scenario(
            f"uni-{kind}-bad-token",
            [connecting({"token": token(f"{user}5", "y" * 40)}, stream="s", events=1)],
        ),
        Scenario(
            f"uni-{kind}-expired-token",
            [connecting({"token": token(f"{user}6", exp=1)}, stream="s", events=1)],
        ),
    ]


def emulation(session: str = "$SESSION", node: str = "$NODE", *commands: dict[str, Any]) -> Http:
    body = {"session": session, "node": node, "data": command_lines(*commands)}
    return Http("/emulation", "POST", body=body, headers=ORIGIN)


def subscribe(channel: str) -> dict[str, Any]:
    return {"id": 2, "subscribe": {"channel": channel}}


def emulated(kind: str) -> list[Scenario]:
    """The same exchanges over HTTP streaming (``kind="http_stream"``) and SSE."""
    path = f"/connection/{kind}"
    method = "POST" if kind == "http_stream" else "GET"

    def connecting(user: str, headers: tuple[tuple[str, str], ...] = ORIGIN, http10: bool = False) -> Http:
        first = command_lines({"id": 1, "connect": request(user)})
        if method == "POST":
            json_headers = (*headers, ("Content-Type", "application/json"))
            return Http(
                path, "POST", raw=first.encode(), headers=json_headers, stream="s", events=1, http10=http10
            )
        return Http(
            path,
            "GET",
            query=cf_connect({"id": 1, "connect": request(user)}),
            headers=headers,
            stream="s",
            events=1,
            http10=http10,
        )

    user = f"e{kind}"
    return [
        Scenario(f"{kind}-connect", [connecting(f"{user}1")]),
        Scenario(f"{kind}-foreign-origin", [connecting(f"{user}2", (("Origin", EVIL),))]),
        Scenario(
            f"{kind}-http10",
            [
                connecting(f"{user}9", http10=True),
                emulation("$SESSION", "$NODE", subscribe(f"plain:{user}9")),
                Events(1),
                publish(f"plain:{user}9"),
                Api("disconnect", {"user": f"{user}9"}),
                Events(3),
            ],
        ),
        Scenario(
            f"{kind}-subscribe",
            [
                connecting(f"{user}3"),
                emulation("$SESSION", "$NODE", subscribe(f"plain:{user}3")),
                Events(1),
                publish(f"plain:{user}3"),
                Events(1),
                Api("disconnect", {"user": f"{user}3"}),
                Events(2),
            ],
        ),
        Scenario(
            f"{kind}-emulation-batch",
            [
                connecting(f"{user}10"),
                emulation(
                    "$SESSION",
                    "$NODE",
                    {"id": 2, "subscribe": {"channel": f"plain:{user}10"}},
                    {"id": 3, "presence_stats": {"channel": f"plain:{user}10"}},
                    {"id": 4, "connect": {}},
                ),
                Events(4),
            ],
        ),
        Scenario(
            f"{kind}-first-not-connect",
            [
                Http(
                    path,
                    method,
                    query=cf_connect({"id": 1, "subscribe": {"channel": "plain:x"}}),
                    raw=command_lines({"id": 1, "subscribe": {"channel": "plain:x"}}).encode(),
                    headers=(*ORIGIN, ("Content-Type", "application/json")),
                    stream="s",
                    events=2,
                )
            ],
        ),
        Scenario(
            f"{kind}-unreadable-connect",
            [
                Http(
                    path,
                    method,
                    query="cf_connect=%7Bnot",
                    raw=b"{not",
                    headers=(*ORIGIN, ("Content-Type", "application/json")),
                    stream="s",
                    events=2,
                )
            ],
        ),
        Scenario(
            f"{kind}-emulation-without-session",
            [
                connecting(f"{user}7"),
                Http("/emulation", "POST", body={"node": "$NODE", "data": "{}"}, headers=ORIGIN),
            ],
        ),
        Scenario(
            f"{kind}-emulation-object-data",
            [
                connecting(f"{user}8"),
                Http(
                    "/emulation",
                    "POST",
                    body={"session": "$SESSION", "node": "$NODE", "data": {"id": 3}},
                    headers=ORIGIN,
                ),
                emulation("$SESSION", "$NODE", subscribe(f"plain:{user}8")),
                Events(1),  # dropped without a word: the next command's reply comes first
            ],
        ),
        Scenario(
            f"{kind}-unknown-session",
            [connecting(f"{user}4"), emulation("nosuch", "$NODE", subscribe("plain:x"))],
        ),
        Scenario(
            f"{kind}-unknown-node",
            [connecting(f"{user}5"), emulation("$SESSION", "nosuch", subscribe("plain:x"))],
        ),
        Scenario(
            f"{kind}-unreadable-commands",
            [
                connecting(f"{user}6"),
                Http(
                    "/emulation",
                    "POST",
                    body={"session": "$SESSION", "node": "$NODE", "data": "nonsense"},
                    headers=ORIGIN,
                ),
                Events(2),
            ],
        ),
        Scenario(f"{kind}-no-connect", [Http(path, method, headers=ORIGIN)]),
        Scenario(f"{kind}-other-method", [Http(path, "PUT", headers=ORIGIN)]),
        Scenario(f"{kind}-too-large", [Http(path, "POST", raw=TOO_LARGE, headers=ORIGIN)]),
    ]


PROTOBUF = (*ORIGIN, ("Content-Type", "application/octet-stream"))

PROTOBUF_CONNECT = Scenario(
    "http_stream-protobuf-connect",
    [
        Http(
            "/connection/http_stream",
            "POST",
            raw=encode_command("protobuf", {"id": 1, "connect": request("ep1", channels=["plain:ep1"])}),
            headers=PROTOBUF,
            stream="s",
            events=1,
        ),
        publish("plain:ep1"),
        Events(1),
        Api("disconnect", {"user": "ep1"}),
        Events(2),
    ],
)

PROTOBUF_STREAM = Scenario(
    "http_stream-protobuf-unreadable",
    [
        Http(
            "/connection/http_stream",
            "POST",
            raw=b"{not protobuf",
            headers=PROTOBUF,
            stream="s",
            events=2,
        )
    ],
)
"""Content-Type application/octet-stream selects Protobuf: a JSON body is a bad request there."""

PREFLIGHT = (
    *ORIGIN,
    ("Access-Control-Request-Method", "POST"),
    ("Access-Control-Request-Headers", "content-type"),
)

PREFLIGHTS = [
    Scenario(f"preflight-{path.rsplit('/', 1)[1]}", [Http(path, "OPTIONS", headers=PREFLIGHT)])
    for path in (
        "/connection/uni_http_stream",
        "/connection/uni_sse",
        "/connection/http_stream",
        "/connection/sse",
        "/emulation",
    )
]

LIMIT = 65536
"""The default ``max_request_body_size`` of every endpoint here."""

BODY_LIMITS = [
    Scenario(f"limit-{path.rsplit('/', 1)[1]}-{size}", [Http(path, "POST", raw=b" " * size, headers=ORIGIN)])
    for path in ("/connection/uni_http_stream", "/connection/uni_sse", "/emulation")
    for size in (LIMIT, LIMIT + 1)
]
"""Exactly at the body limit, and one byte past it (whitespace: never a connect request)."""

UNI_OCTET_STREAM = Scenario(
    "uni-http_stream-octet-stream",
    [
        Http(
            "/connection/uni_http_stream",
            "POST",
            raw=json.dumps(request("tho")).encode(),
            headers=(*ORIGIN, ("Content-Type", "application/octet-stream")),
            stream="s",
            events=1,
        )
    ],
)
"""uni_http_stream speaks JSON whatever the request's Content-Type."""

EMULATION_ENDPOINT = [
    Scenario("emulation-get", [Http("/emulation", "GET", headers=ORIGIN)]),
    Scenario("emulation-too-large", [Http("/emulation", "POST", raw=TOO_LARGE, headers=ORIGIN)]),
    Scenario("emulation-bad-body", [Http("/emulation", "POST", raw=b"{not", headers=ORIGIN)]),
]

CONN_INIT = [
    Scenario("init-get", [Http("/connection/init", "GET", headers=ORIGIN)]),
    Scenario("init-get-no-origin", [Http("/connection/init", "GET")]),
    Scenario("init-get-evil-origin", [Http("/connection/init", "GET", headers=(("Origin", EVIL),))]),
    Scenario(
        "init-get-asked-headers",
        [Http("/connection/init", "GET", headers=(*ORIGIN, ("Access-Control-Request-Headers", "x-token")))],
    ),
    Scenario("init-post", [Http("/connection/init", "POST", raw=b"{}", headers=ORIGIN)]),
    Scenario("init-preflight", [Http("/connection/init", "OPTIONS", headers=ORIGIN)]),
]
"""The connection init endpoint (``init.enabled``): ``200 {}`` to a GET, CORS for allowed origins."""

UNSERVED_PATHS = [
    Scenario("unserved-path", [Http("/nope"), Http("/"), Http("/connection/nope", "POST", raw=b"{}")]),
    Scenario("unserved-path-under-api", [Http("/api/publish/extra", "POST", raw=b"{}")]),
]
"""A path no endpoint serves gets Go's ``404 page not found`` (test_not_found.py checks nosniff)."""

SCENARIOS = [
    *UNSERVED_PATHS,
    *UNI_WEBSOCKET,
    *uni_stream_scenarios("sse", "GET"),
    *uni_stream_scenarios("http_stream", "POST"),
    *emulated("http_stream"),
    *emulated("sse"),
    PROTOBUF_CONNECT,
    UNI_SSE_POST,
    SSE_POST,
    PROTOBUF_STREAM,
    *PREFLIGHTS,
    *BODY_LIMITS,
    UNI_OCTET_STREAM,
    *EMULATION_ENDPOINT,
    *CONN_INIT,
]
"""Every scenario speaks JSON: the unidirectional transports and SSE know no other protocol."""


@pytest.mark.parametrize(("scenario", "protocol"), params(SCENARIOS, ws_protocols=False))
async def test_transports(pair: Pair, scenario: Scenario, protocol: str) -> None:
    await check(pair.centrifugo, pair.rotary, scenario, protocol, f"transports/{scenario.name}")
