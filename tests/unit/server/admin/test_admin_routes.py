"""The admin endpoints through a real aiohttp server: login, the admin API, insecure mode, the UI's
files, which port serves them, and that no admin route but init, login and files answers without
the admin token (the routes enumerated from the application's router)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from helpers.server import InProcessServer, start_in_process

from rotary.server.admin import token
from rotary.server.app import build_server
from rotary.server.config.schema import AdminConfig, ClientConfig, Config, TokenConfig
from rotary.server.config.schema_channels import ChannelConfig, ChannelOptions, NamespaceConfig
from rotary.server.config.schema_transports import HttpAPIConfig, HTTPServerConfig
from rotary.server.config.validate import validate

PASSWORD = "admin-password"
SECRET = "admin-secret"
API_KEY = "http-api-key-never-in-the-browser"
PREFIX = "/panel"

PUBLIC = {f"{PREFIX}/admin/init", f"{PREFIX}/admin/auth", PREFIX, f"{PREFIX}/{{path}}"}
"""The admin routes that answer without a token: what the UI needs before its login."""

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def make_config(**admin: Any) -> Config:
    settings = {"enabled": True, "password": PASSWORD, "secret": SECRET, "handler_prefix": PREFIX, **admin}
    return Config(
        client=ClientConfig(token=TokenConfig(hmac_secret_key="admin-tests-hmac-secret-key-32-bytes!")),
        http_api=HttpAPIConfig(key=API_KEY),
        admin=AdminConfig(**settings),
        channel=ChannelConfig(
            without_namespace=ChannelOptions(allow_subscribe_for_client=True),
            namespaces=(NamespaceConfig(name="hist", history_size=10, history_ttl=300.0),),
        ),
    )


Factory = Callable[..., Awaitable[InProcessServer]]


@pytest.fixture
async def make_stack() -> AsyncIterator[Factory]:
    made: list[InProcessServer] = []

    async def make(**admin: Any) -> InProcessServer:
        made.append(await start_in_process(make_config(**admin)))
        return made[-1]

    yield make
    for stack in made:
        await stack.close()


@pytest.fixture
async def stack(make_stack: Factory) -> InProcessServer:
    return await make_stack()


async def login(stack: InProcessServer, password: str = PASSWORD) -> tuple[int, bytes]:
    response = await stack.http.post(f"{PREFIX}/admin/auth", data={"password": password})
    return response.status, await response.read()


async def admin_api(stack: InProcessServer, body: bytes, auth: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": auth} if auth is not None else {}
    response = await stack.http.post(f"{PREFIX}/admin/api", data=body, headers=headers)
    return response.status, await response.read()


async def logged_in(stack: InProcessServer) -> str:
    status, body = await login(stack)
    assert status == 200, body
    return f"token {orjson.loads(body)['token']}"


# --- login ------------------------------------------------------------------------------------------


async def test_the_right_password_gets_a_token_signed_with_the_secret(stack: InProcessServer) -> None:
    response = await stack.http.post(f"{PREFIX}/admin/auth", data={"password": PASSWORD})
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.read()
    assert body.endswith(b"\n")
    issued = orjson.loads(body)
    assert list(issued) == ["token"]
    assert token.valid(SECRET, issued["token"], int(time.time()))
    assert API_KEY.encode() not in body


@pytest.mark.parametrize("password", ["", "wrong", PASSWORD + " ", PASSWORD.upper()])
async def test_a_wrong_password_is_refused_with_400(stack: InProcessServer, password: str) -> None:
    assert await login(stack, password) == (400, b"Bad Request\n")


async def test_the_password_may_come_in_the_query_as_go_formvalue_reads_it(stack: InProcessServer) -> None:
    response = await stack.http.post(f"{PREFIX}/admin/auth", params={"password": PASSWORD})
    assert response.status == 200


@pytest.mark.parametrize("unset", ["password", "secret"])
async def test_login_is_refused_without_a_password_or_secret(make_stack: Factory, unset: str) -> None:
    stack = await make_stack(**{unset: ""})
    status, _ = await login(stack, PASSWORD if unset == "secret" else "")
    assert status == 400


async def test_login_takes_post_only(stack: InProcessServer) -> None:
    response = await stack.http.get(f"{PREFIX}/admin/auth", params={"password": PASSWORD})
    assert response.status == 405


# --- init ---------------------------------------------------------------------------------------------


async def test_init_tells_whether_the_token_is_valid(stack: InProcessServer) -> None:
    response = await stack.http.get(f"{PREFIX}/admin/init")
    assert await response.read() == b'{"authenticated":false,"edition":"oss","insecure":false}\n'
    auth = await logged_in(stack)
    response = await stack.http.get(f"{PREFIX}/admin/init", headers={"Authorization": auth})
    assert orjson.loads(await response.read())["authenticated"] is True


# --- the admin API ------------------------------------------------------------------------------------


async def test_the_admin_api_runs_legacy_commands_with_the_token(stack: InProcessServer) -> None:
    auth = await logged_in(stack)
    body = (
        b'{"method":"publish","params":{"channel":"hist:a","data":{"n":1}}}\n'
        b'{"id":2,"method":"history","params":{"channel":"hist:a","limit":5}}'
    )
    status, reply = await admin_api(stack, body, auth)
    assert status == 200
    published, history = (orjson.loads(line) for line in reply.split(b"\n"))
    assert published["result"]["offset"] == 1
    assert history["id"] == 2
    assert [p["data"] for p in history["result"]["publications"]] == [{"n": 1}]
    status, result = await stack.call("history", {"channel": "hist:a", "limit": 5})  # the HTTP API sees it
    assert [p["data"] for p in result["result"]["publications"]] == [{"n": 1}]


async def test_the_admin_api_answers_api_errors_in_the_reply(stack: InProcessServer) -> None:
    auth = await logged_in(stack)
    status, reply = await admin_api(stack, b'{"method":"history","params":{"channel":"nope:a"}}', auth)
    assert status == 200
    assert orjson.loads(reply) == {"error": {"code": 102, "message": "unknown channel"}}
    status, _ = await admin_api(stack, b"", auth)
    assert status == 400


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "token",
        "token ",
        "Bearer {token}",
        "token {token} extra",
        "token {token}x",
        f"apikey {API_KEY}",
        "token " + token.issue("another-secret", 1796450137),
    ],
)
async def test_the_admin_api_refuses_without_a_valid_token(stack: InProcessServer, auth: str | None) -> None:
    issued = (await logged_in(stack)).split()[1]
    header = auth.format(token=issued) if auth is not None else None
    assert await admin_api(stack, b'{"method":"info","params":{}}', header) == (401, b"")


async def test_the_http_api_key_does_not_open_the_admin_api(stack: InProcessServer) -> None:
    response = await stack.http.post(
        f"{PREFIX}/admin/api", data=b'{"method":"info","params":{}}', headers={"X-API-Key": API_KEY}
    )
    assert response.status == 401


async def test_the_token_scheme_is_case_insensitive(stack: InProcessServer) -> None:
    auth = (await logged_in(stack)).replace("token", "TOKEN", 1)
    status, _ = await admin_api(stack, b'{"method":"info","params":{}}', auth)
    assert status == 200


async def test_insecure_mode_needs_no_token(make_stack: Factory) -> None:
    stack = await make_stack(insecure=True, password="", secret="")
    status, reply = await admin_api(stack, b'{"method":"info","params":{}}', None)
    assert status == 200
    assert orjson.loads(reply)["result"]["nodes"][0]["name"] == stack.node.config.name
    response = await stack.http.get(f"{PREFIX}/admin/init")
    assert orjson.loads(await response.read()) == {"authenticated": True, "edition": "oss", "insecure": True}


async def test_without_a_secret_nothing_opens_the_admin_api(make_stack: Factory) -> None:
    stack = await make_stack(secret="")
    status, _ = await admin_api(stack, b'{"method":"info","params":{}}', "token x")
    assert status == 401


# --- every admin route ----------------------------------------------------------------------------------


def admin_routes(app: web.Application) -> dict[str, str]:
    """Route pattern -> a path that reaches it, for every route under the admin prefix."""
    found: dict[str, str] = {}
    for resource in app.router.resources():
        info = resource.get_info()
        pattern = info.get("path") or info.get("formatter", "")
        if pattern == PREFIX or pattern.startswith(PREFIX + "/"):
            found[pattern] = pattern.replace("{path}", "js/app.js")
    return found


async def test_no_admin_route_but_init_login_and_files_answers_without_the_token(
    stack: InProcessServer,
) -> None:
    routes = admin_routes(stack.server.external)
    assert set(routes) >= PUBLIC, routes
    guarded = {pattern: path for pattern, path in routes.items() if pattern not in PUBLIC}
    assert guarded, "the admin API route is missing"
    for path in guarded.values():
        for method in METHODS:
            for headers in ({}, {"Authorization": "token forged"}, {"X-API-Key": API_KEY}):
                response = await stack.http.request(method, path, data=b"{}", headers=headers)
                body = await response.read()
                assert response.status in (401, 405), (method, path, headers, response.status)
                assert body == b"", (method, path, body)


async def test_the_files_hold_no_secret(stack: InProcessServer) -> None:
    for path in ("", "index.html", "admin.css", "js/app.js", "js/api.js"):
        response = await stack.http.get(f"{PREFIX}/{path}")
        body = await response.read()
        assert response.status == 200, path
        for secret in (API_KEY, PASSWORD, SECRET):
            assert secret.encode() not in body


# --- the UI's files ------------------------------------------------------------------------------------


async def test_the_ui_is_served_with_a_strict_policy(stack: InProcessServer) -> None:
    response = await stack.http.get(f"{PREFIX}/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert b'<script type="module" src="js/app.js">' in await response.read()
    response = await stack.http.get(f"{PREFIX}/js/views/status.js")
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"


@pytest.mark.parametrize(
    "path", ["nope.js", "js/", "js/../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "admin/other"]
)
async def test_unknown_files_are_404(stack: InProcessServer, path: str) -> None:
    response = await stack.http.get(f"{PREFIX}/{path}")
    assert response.status == 404


async def test_the_prefix_without_its_slash_redirects(stack: InProcessServer) -> None:
    response = await stack.http.get(PREFIX, allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == f"{PREFIX}/"


async def test_web_path_serves_a_directory_and_nothing_outside_it(
    make_stack: Factory, tmp_path: Path
) -> None:
    root = tmp_path / "ui"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<p>mine</p>")
    (root / "sub" / "a.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    stack = await make_stack(web_path=str(root))
    response = await stack.http.get(f"{PREFIX}/")
    assert await response.read() == b"<p>mine</p>"
    assert "Content-Security-Policy" not in response.headers
    response = await stack.http.get(f"{PREFIX}/sub/a.js")
    assert response.headers["Content-Type"].startswith("text/javascript")
    for path in ("link.txt", "../secret.txt", "sub/../../secret.txt"):
        response = await stack.http.get(f"{PREFIX}/{path}")
        assert response.status == 404, path


# --- which port ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("external", [False, True])
async def test_admin_lives_on_the_internal_port_unless_external(external: bool) -> None:
    config = dataclasses.replace(
        make_config(external=external), http_server=HTTPServerConfig(port=8000, internal_port="9000")
    )
    server = build_server(config)
    assert server.internal is not None
    on_external = bool(admin_routes(server.external))
    on_internal = bool(admin_routes(server.internal))
    assert (on_external, on_internal) == (external, not external)
    app = server.external if external else server.internal
    async with TestClient(TestServer(app)) as client:
        response = await client.post(f"{PREFIX}/admin/auth", data={"password": PASSWORD})
        assert response.status == 200
    await server.verifier.close()


# --- config ---------------------------------------------------------------------------------------------


def test_admin_keys_are_accepted_or_refused_by_name(tmp_path: Path) -> None:
    assert validate(make_config()) == []
    assert validate(make_config(external=True, insecure=True, web_path=str(tmp_path))) == []
    problems = validate(make_config(web_proxy_address="http://127.0.0.1:3000"))
    assert [p.split(":")[0] for p in problems] == ["admin.web_proxy_address"]
    problems = validate(make_config(web_path=str(tmp_path / "missing")))
    assert [p.split(":")[0] for p in problems] == ["admin.web_path"]
    off = make_config(enabled=False, web_proxy_address="x", web_path="/missing")
    assert validate(off) == []
