"""The legacy single API route ``POST /api``: newline-delimited commands, method names in any case or
by number, one reply line per command, and the whole-request failures (400, 503)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from api_settings import API_KEY
from helpers.server import InProcessServer as Stack


async def legacy(stack: Stack, *commands: Any, raw: bytes | None = None) -> tuple[int, Any]:
    body = raw if raw is not None else b"\n".join(orjson.dumps(c) for c in commands)
    response = await stack.http.post("/api", data=body, headers={"X-API-Key": API_KEY})
    data = await response.read()
    if response.status != 200:
        return response.status, data
    assert response.content_type == "application/json"
    return 200, [orjson.loads(line) for line in data.split(b"\n") if line]


async def test_info(stack: Stack) -> None:
    status, replies = await legacy(stack, {"method": "info", "params": {}})
    assert status == 200
    (reply,) = replies
    assert list(reply) == ["result"] and len(reply["result"]["nodes"]) == 1


async def test_several_commands_with_ids(stack: Stack) -> None:
    status, replies = await legacy(
        stack,
        {"id": 1, "method": "publish", "params": {"channel": "hist:a", "data": 1}},
        {"id": 2, "method": "PUBLISH", "params": {"channel": "nope:a", "data": 1}},
        {"id": 3, "method": 6, "params": {"channel": "hist:a", "limit": 5}},
        {"method": "Presence_Stats", "params": {"channel": "pres:x"}},
    )
    assert status == 200
    assert replies[0]["id"] == 1 and replies[0]["result"]["offset"] == 1
    assert replies[1] == {"id": 2, "error": {"code": 102, "message": "unknown channel"}}
    assert replies[2]["id"] == 3 and [p["data"] for p in replies[2]["result"]["publications"]] == [1]
    assert replies[3] == {"result": {"num_clients": 0, "num_users": 0}}


async def test_missing_method_means_publish(stack: Stack) -> None:
    _, replies = await legacy(stack, {"params": {"channel": "hist:a", "data": 1}})
    assert replies[0]["result"]["offset"] == 1


async def test_commands_may_be_separated_by_any_whitespace(stack: Stack) -> None:
    body = b'{"method":"info","params":{}}  {"method":"channels","params":{}}\r\n\n'
    status, replies = await legacy(stack, raw=body)
    assert status == 200 and len(replies) == 2


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ({"method": 99, "params": {}}, 104),
        ({"method": "connections", "params": {}}, 104),
        ({"method": "MAP_PUBLISH", "params": {}}, 107),
        ({"method": 37, "params": {"channel": "nope:x"}}, 102),
        ({"method": "info"}, 107),
        ({"method": "publish", "params": {"channel": 5}}, 107),
        ({"method": "publish", "params": []}, 107),
        ({"method": "rpc", "params": {"method": "x"}}, 104),
    ],
    ids=[
        "unknown-number",
        "pro-method",
        "map-method",
        "map-number",
        "no-params",
        "bad-params",
        "params-not-object",
        "rpc",
    ],
)
async def test_command_errors(stack: Stack, command: dict[str, Any], code: int) -> None:
    status, replies = await legacy(stack, command)
    assert status == 200
    assert replies[0]["error"]["code"] == code


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"method":"nope","params":{}}',
        b'{"method":"","params":{}}',
        b'{"method":1.0,"params":{}}',
        b'{"method":null}',
        b'{"id":-1,"method":"info","params":{}}',
        b"[1]",
        b"\xff",
    ],
    ids=[
        "empty",
        "broken",
        "unknown-name",
        "empty-name",
        "float-method",
        "null-method",
        "negative-id",
        "array",
        "not-utf8",
    ],
)
async def test_unparsable_requests_are_400(stack: Stack, body: bytes) -> None:
    status, _ = await legacy(stack, raw=body)
    assert status == 400


async def test_unparsable_request_runs_nothing(stack: Stack) -> None:
    body = b'{"method":"publish","params":{"channel":"hist:a","data":1}}\n{"method":"nope"}'
    status, _ = await legacy(stack, raw=body)
    assert status == 400
    _, replies = await legacy(stack, {"method": "history", "params": {"channel": "hist:a"}})
    assert replies[0]["result"]["offset"] == 0


async def test_503_while_shutting_down(stack: Stack) -> None:
    stack.node.closing = True
    status, _ = await legacy(stack, {"method": "info", "params": {}})
    assert status == 503
