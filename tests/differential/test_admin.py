"""The admin endpoints of Centrifugo v6.9.1 and rotary side by side, from the same config file:
status, content type and body of init, login and admin API calls, and each server's admin token
accepted by the other (both sign with gorilla/securecookie's format and the same admin.secret).
See https://centrifugal.dev/docs/server/admin_web.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from differential.conftest import NAMESPACE_DEFAULTS, Pair
from differential.runner import API_KEY, SECRET, Target, normalize

PASSWORD = "differential-admin-password"
ADMIN_SECRET = "differential-admin-secret"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return {
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "admin": {"enabled": True, "password": PASSWORD, "secret": ADMIN_SECRET},
        "channel": {
            "namespaces": [{"name": "chat", **NAMESPACE_DEFAULTS, "history_size": 5, "history_ttl": "300s"}]
        },
    }


async def request(
    target: Target, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Status, the content type (without the charset Go and aiohttp may spell apart) and body."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, target.http_url + path, data=data, headers=headers or {}) as response,
    ):
        body = await response.read()
    kind = response.headers.get("Content-Type", "") if body else ""
    return {"status": response.status, "type": kind, "body": body}


async def both(pair: Pair, method: str, path: str, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        await request(pair.centrifugo, method, path, **options),
        await request(pair.rotary, method, path, **options),
    )


async def login(target: Target) -> str:
    answer = await request(target, "POST", "/admin/auth", data={"password": PASSWORD})
    assert answer["status"] == 200, answer
    issued: str = orjson.loads(answer["body"])["token"]
    return issued


def shape(value: Any) -> Any:
    """A JSON reply with its values replaced by their types (ids, epochs and counters differ)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def lines(body: bytes) -> list[Any]:
    """The reply lines, normalized as the HTTP API scenarios are (``info`` nodes: no metrics)."""
    return [normalize(orjson.loads(line), {}) for line in body.splitlines() if line]


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("GET", "/admin/init", {}),
        ("POST", "/admin/init", {}),
        ("GET", "/admin/init", {"headers": {"Authorization": "token forged"}}),
        ("POST", "/admin/auth", {"data": {"password": "wrong"}}),
        ("POST", "/admin/auth", {}),
        ("GET", "/admin/auth", {}),
        ("POST", "/admin/api", {"data": b'{"method":"info","params":{}}'}),
        ("POST", "/admin/api", {"data": b"{}", "headers": {"Authorization": "token forged"}}),
        ("POST", "/admin/api", {"data": b"{}", "headers": {"Authorization": f"Bearer {API_KEY}"}}),
        ("POST", "/admin/api", {"data": b"{}", "headers": {"X-API-Key": API_KEY}}),
        ("GET", "/admin/api", {}),
        ("GET", "/no-such-file.js", {}),
    ],
)
async def test_answers_without_a_login_are_the_same(
    pair: Pair, method: str, path: str, options: dict[str, Any]
) -> None:
    centrifugo, rotary = await both(pair, method, path, **options)
    assert rotary == centrifugo


async def test_the_ui_is_served_at_the_root(pair: Pair) -> None:
    centrifugo, rotary = await both(pair, "GET", "/")
    assert (
        (rotary["status"], rotary["type"])
        == (centrifugo["status"], centrifugo["type"])
        == (200, "text/html; charset=utf-8")
    )


async def test_login_answers_alike(pair: Pair) -> None:
    centrifugo, rotary = await both(pair, "POST", "/admin/auth", data={"password": PASSWORD})
    assert (rotary["status"], rotary["type"]) == (centrifugo["status"], centrifugo["type"])
    assert shape(orjson.loads(rotary["body"])) == shape(orjson.loads(centrifugo["body"]))


async def test_each_servers_token_opens_the_other(pair: Pair) -> None:
    for issuer, server in ((pair.centrifugo, pair.rotary), (pair.rotary, pair.centrifugo)):
        auth = {"Authorization": f"token {await login(issuer)}"}
        init = await request(server, "GET", "/admin/init", headers=auth)
        assert orjson.loads(init["body"]) == {"authenticated": True, "edition": "oss", "insecure": False}
        answer = await request(
            server, "POST", "/admin/api", data=b'{"method":"info","params":{}}', headers=auth
        )
        assert answer["status"] == 200, (issuer.name, server.name, answer)


@pytest.mark.parametrize(
    "commands",
    [
        b'{"method":"publish","params":{"channel":"chat:d1","data":{"x":1}}}\n'
        b'{"id":2,"method":"history","params":{"channel":"chat:d1","limit":5}}',
        b'{"method":"info","params":{}}',
        b'{"method":"channels","params":{}}',
        b'{"method":"presence_stats","params":{"channel":"chat:d2"}}',
        b'{"method":"disconnect","params":{"user":"nobody"}}',
        b'{"method":"unsubscribe","params":{"user":"nobody","channel":"chat:d3"}}',
        b'{"method":"broadcast","params":{"channels":["chat:d4","chat:d5"],"data":{}}}',
        b'{"method":"connections","params":{"user":"nobody"}}',
        b'{"method":"history","params":{"channel":"nope:x"}}',
        b'{"method":"publish"}',
        b"",
        b"{",
    ],
)
async def test_admin_api_calls_answer_alike(pair: Pair, commands: bytes) -> None:
    replies = []
    for target in (pair.centrifugo, pair.rotary):
        auth = {"Authorization": f"token {await login(target)}"}
        replies.append(await request(target, "POST", "/admin/api", data=commands, headers=auth))
    centrifugo, rotary = replies
    assert (rotary["status"], rotary["type"]) == (centrifugo["status"], centrifugo["type"]), replies
    if centrifugo["status"] == 200:
        assert [shape(line) for line in lines(rotary["body"])] == [
            shape(line) for line in lines(centrifugo["body"])
        ]
