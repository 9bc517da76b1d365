"""The HTTP API adapter through a real aiohttp server: routes, the order of checks (405, 401, 400),
API key variants, result and error envelopes, and the transport error mode."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
import pytest
from api_settings import API_KEY, StackFactory
from helpers.server import InProcessServer as Stack


async def post(
    stack: Stack, path: str, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    response = await stack.http.post(path, data=body, headers=headers or {})
    return response.status, await response.read()


# --- routes and refusals ---------------------------------------------------------------------------


async def test_publish_succeeds_with_an_empty_result(stack: Stack) -> None:
    response = await stack.http.post(
        "/api/publish", data=b'{"channel":"news","data":{"a":1}}', headers={"X-API-Key": API_KEY}
    )
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.read() == b'{"result":{}}'


async def test_publish_with_history_reports_offset_and_epoch(stack: Stack) -> None:
    status, body = await stack.call("publish", {"channel": "hist:a", "data": "x"})
    assert status == 200
    assert body["result"]["offset"] == 1 and body["result"]["epoch"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_http_methods_are_405_before_auth(stack: Stack, method: str) -> None:
    response = await stack.http.request(method, "/api/publish")
    assert response.status == 405
    response = await stack.http.request(method, "/api")
    assert response.status == 405


@pytest.mark.parametrize("path", ["/api/nope", "/api/connections", "/api/publish/x"])
async def test_unknown_methods_are_404(stack: Stack, path: str) -> None:
    status, _ = await post(stack, path, headers={"X-API-Key": API_KEY})
    assert status == 404


async def test_unknown_methods_answer_like_go_without_a_key(stack: Stack) -> None:
    """Centrifugo's router answers an unknown method before any key check, with Go's NotFound."""
    response = await stack.http.get("/api/nope")
    assert response.status == 404
    assert response.content_type == "text/plain"
    assert await response.read() == b"404 page not found\n"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"x"',
        b'{"channel": 5}',
        b'{"channel":"news","skip_history":"yes"}',
        b'{"channel":"news","version":-1}',
        b'{"channel":"news","tags":{"a":1}}',
        b"{} {}",
    ],
)
async def test_malformed_bodies_are_400(stack: Stack, body: bytes) -> None:
    status, text = await post(stack, "/api/publish", body, headers={"X-API-Key": API_KEY})
    assert status == 400
    assert text.startswith(b"Bad Request")


async def test_400_names_the_bad_field(stack: Stack) -> None:
    _, text = await post(
        stack, "/api/history", b'{"channel":"hist:a","limit":"5"}', headers={"X-API-Key": API_KEY}
    )
    assert b"limit" in text


async def test_keys_match_without_regard_to_case_and_unknown_keys_are_ignored(stack: Stack) -> None:
    status, body = await stack.call("publish", {"Channel": "hist:a", "DATA": 1, "whatever": [1]})
    assert (status, body["result"]["offset"]) == (200, 1)


async def test_null_body_is_an_empty_request(stack: Stack) -> None:
    status, body = await stack.call("info", None)
    assert status == 200 and len(body["result"]["nodes"]) == 1


# --- API key ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"X-API-Key": API_KEY}, ""),
        ({"Authorization": f"apikey {API_KEY}"}, ""),
        ({"Authorization": f"ApiKey {API_KEY}"}, ""),
        ({}, f"?api_key={API_KEY}"),
        ({"X-API-Key": "wrong"}, f"?api_key={API_KEY}"),
    ],
    ids=["header", "authorization", "authorization-any-case", "query", "query-after-wrong-header"],
)
async def test_accepted_keys(stack: Stack, headers: dict[str, str], query: str) -> None:
    status, _ = await post(stack, f"/api/info{query}", headers=headers)
    assert status == 200


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, ""),
        ({"X-API-Key": "wrong"}, ""),
        ({"X-API-Key": "wrong", "Authorization": f"apikey {API_KEY}"}, ""),
        ({"Authorization": f"Bearer {API_KEY}"}, ""),
        ({"Authorization": f"apikey {API_KEY} extra"}, ""),
        ({}, "?api_key=wrong"),
    ],
    ids=[
        "none",
        "wrong-header",
        "header-wins-over-authorization",
        "other-scheme",
        "extra-part",
        "wrong-query",
    ],
)
async def test_refused_keys(stack: Stack, headers: dict[str, str], query: str) -> None:
    status, body = await post(stack, f"/api/info{query}", headers=headers)
    assert (status, body) == (401, b"")
    status, _ = await post(stack, f"/api{query}", b'{"method":"info","params":{}}', headers=headers)
    assert status == 401


async def test_no_configured_key_refuses_everyone(make_stack: StackFactory) -> None:
    stack = await make_stack(key="")
    status, _ = await post(stack, "/api/info", headers={"X-API-Key": ""})
    assert status == 401


async def test_insecure_needs_no_key(make_stack: StackFactory) -> None:
    stack = await make_stack(key="", insecure=True)
    status, _ = await post(stack, "/api/info")
    assert status == 200


async def test_custom_handler_prefix(make_stack: StackFactory) -> None:
    stack = await make_stack(handler_prefix="/server/api/")
    status, _ = await post(stack, "/server/api/info", headers={"X-API-Key": API_KEY})
    assert status == 200
    status, _ = await post(
        stack, "/server/api", b'{"method":"info","params":{}}', headers={"X-API-Key": API_KEY}
    )
    assert status == 200
    status, _ = await post(stack, "/api/info", headers={"X-API-Key": API_KEY})
    assert status == 404


# --- errors ----------------------------------------------------------------------------------------


async def test_errors_are_200_with_an_error_object(stack: Stack) -> None:
    status, body = await stack.call("publish", {"channel": "nope:a", "data": 1})
    assert (status, body) == (200, {"error": {"code": 102, "message": "unknown channel"}})


@pytest.mark.parametrize(
    ("method", "payload", "status", "code"),
    [
        ("publish", {"channel": "nope:a", "data": 1}, 404, 102),
        ("publish", {"channel": "news"}, 400, 107),
        ("presence", {"channel": "news"}, 400, 108),
        ("rpc", {"method": "x"}, 404, 104),
        ("history", {"channel": "hist:a", "limit": 1, "since": {"offset": 1, "epoch": "x"}}, 416, 112),
    ],
)
async def test_transport_error_mode_maps_statuses(
    make_stack: StackFactory, method: str, payload: dict[str, Any], status: int, code: int
) -> None:
    stack = await make_stack(error_mode="transport")
    got_status, body = await stack.call(method, payload)
    assert (got_status, body["code"], sorted(body)) == (status, code, ["code", "message"])


async def test_transport_error_mode_by_header(stack: Stack) -> None:
    status, body = await stack.call(
        "publish", {"channel": "nope:a", "data": 1}, **{"X-Centrifugo-Error-Mode": "transport"}
    )
    assert (status, body) == (404, {"code": 102, "message": "unknown channel"})


async def test_transport_error_mode_keeps_batch_and_broadcast_items(stack: Stack) -> None:
    mode = {"X-Centrifugo-Error-Mode": "transport"}
    status, body = await stack.call(
        "batch", {"commands": [{"publish": {"channel": "nope:a", "data": 1}}]}, **mode
    )
    assert (status, body) == (200, {"replies": [{"error": {"code": 102, "message": "unknown channel"}}]})
    status, body = await stack.call("broadcast", {"channels": ["nope:a", "news"], "data": 1}, **mode)
    assert (status, body) == (
        200,
        {"result": {"responses": [{"error": {"code": 102, "message": "unknown channel"}}, {"result": {}}]}},
    )


async def test_binary_history_cannot_be_read_as_json(stack: Stack) -> None:
    await stack.call("publish", {"channel": "bin:a", "b64data": base64.b64encode(b"\xff\x00").decode()})
    status, _ = await stack.call("history", {"channel": "bin:a", "limit": 1})
    assert status == 500


# --- result shapes ---------------------------------------------------------------------------------


async def test_history_result_shape(stack: Stack) -> None:
    empty = await stack.call("history", {"channel": "hist:a"})
    assert empty[1]["result"]["publications"] == [] and empty[1]["result"]["offset"] == 0
    await stack.call("publish", {"channel": "hist:a", "data": {"n": 1}, "tags": {"t": "1"}})
    _, body = await stack.call("history", {"channel": "hist:a", "limit": 10})
    (pub,) = body["result"]["publications"]
    assert pub == {"data": {"n": 1}, "offset": 1, "tags": {"t": "1"}}


async def test_presence_result_shape(stack: Stack) -> None:
    client = await stack.connect("u1", "pres:room")
    _, body = await stack.call("presence", {"channel": "pres:room"})
    assert body == {"result": {"presence": {client.id: {"user": "u1", "client": client.id}}}}
    _, body = await stack.call("presence_stats", {"channel": "pres:room"})
    assert body == {"result": {"num_clients": 1, "num_users": 1}}
    _, body = await stack.call("presence", {"channel": "pres:empty"})
    assert body == {"result": {"presence": {}}}
    _, body = await stack.call("presence_stats", {"channel": "pres:empty"})
    assert body == {"result": {"num_clients": 0, "num_users": 0}}


async def test_info_and_channels_shapes(stack: Stack) -> None:
    _, body = await stack.call("channels", {})
    assert body == {"result": {"channels": {}}}
    await stack.connect("u1", "news")
    _, body = await stack.call("channels", {"pattern": "n*"})
    assert body == {"result": {"channels": {"news": {"num_clients": 1}}}}
    _, body = await stack.call("info", {})
    (node,) = body["result"]["nodes"]
    assert {"uid", "name", "version", "num_clients", "num_users", "num_channels", "num_subs"} <= node.keys()
    assert node["num_clients"] == 1


@pytest.mark.parametrize("method", ["subscribe", "unsubscribe", "disconnect", "refresh", "history_remove"])
async def test_empty_results(stack: Stack, method: str) -> None:
    payload = {"channel": "hist:a", "user": "nobody"}
    assert await stack.call(method, payload) == (200, {"result": {}})


async def test_batch_result_shape(stack: Stack) -> None:
    commands: list[Any] = [
        {"publish": {"channel": "news", "data": 1}},
        None,
        {},
        {"connections": {}},
        {"info": {}, "publish": {"channel": "hist:b", "data": 1}},
    ]
    status, body = await stack.call("batch", {"commands": commands, "parallel": True})
    assert status == 200
    replies = body["replies"]
    assert replies[:4] == [
        {"publish": {}},
        {"error": {"code": 107, "message": "bad request"}},
        {"error": {"code": 104, "message": "not found"}},
        {"error": {"code": 104, "message": "not found"}},
    ]
    assert replies[4]["publish"]["offset"] == 1


async def test_batch_with_a_malformed_command_is_400(stack: Stack) -> None:
    status, _ = await stack.call("batch", {"commands": [{"publish": {"channel": 1}}]})
    assert status == 400
    status, _ = await stack.call("batch", {"commands": [5]})
    assert status == 400


async def test_raw_data_round_trips_exactly(stack: Stack) -> None:
    client = await stack.connect("u1", "news")
    data = {"text": "h\u00e9llo", "list": [1, 2.5, None, True], "nested": {"a": {}}}
    await stack.http.post(
        "/api/publish", data=orjson.dumps({"channel": "news", "data": data}), headers={"X-API-Key": API_KEY}
    )
    assert (await client.push("pub"))["pub"]["data"] == data


@pytest.mark.parametrize("method", ["publish", ""])
async def test_numbers_in_data_keep_their_text(stack: Stack, method: str) -> None:
    """Centrifugo keeps ``data`` verbatim (Go's json.RawMessage): no number is rewritten or rounded."""
    client = await stack.connect("u1", "news")
    data = b'{"a":1e5,"b":1.50,"c":-0,"d":123456789012345678901234567890,"e":18446744073709551615}'
    params = b'{"channel":"news","data":' + data + b"}"
    body = params if method else b'{"method":"publish","params":' + params + b"}"
    path = "/api/publish" if method else "/api"
    response = await stack.http.post(path, data=body, headers={"X-API-Key": API_KEY})
    assert response.status == 200
    frame = (await client.ws.receive()).data  # the publication's push, read as the bytes sent
    assert data.decode() in frame


async def raw_status(stack: Stack, request: bytes) -> int:
    """Sends ``request`` as is over a fresh socket; the status of the response."""
    server = stack.http.server
    assert server.port is not None
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        status_line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize("header", [b"X-API-Key", b"Authorization: apikey"])
@pytest.mark.parametrize("path", [b"/api/info", b"/api"])
async def test_key_that_is_not_utf8_is_refused(stack: Stack, header: bytes, path: bytes) -> None:
    """Centrifugo compares header bytes; a key that is not UTF-8 matches nothing (401), never a 500."""
    body = b'{"method":"info"}'
    request = (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        + header.split(b":")[0]
        + b": "
        + (header.split(b": ", 1)[1] + b" " if b": " in header else b"")
        + b"\xff\xfe\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    assert await raw_status(stack, request) == 401
