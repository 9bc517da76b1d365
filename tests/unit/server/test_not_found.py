"""Unrouted paths get Go's 404 (Centrifugo's mux); an endpoint's own 404 keeps its message."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rotary.server.not_found import unrouted_paths


async def own_not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="node not found")


async def test_an_unrouted_path_gets_gos_page_not_found() -> None:
    app = web.Application(middlewares=[unrouted_paths])
    app.router.add_post("/emulation", own_not_found)
    async with TestClient(TestServer(app)) as client:
        for method, path in (("GET", "/nope"), ("POST", "/"), ("GET", "/emulation/x")):
            response = await client.request(method, path)
            assert response.status == 404
            assert await response.read() == b"404 page not found\n"
            assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        response = await client.post("/emulation")
        assert (response.status, await response.text()) == (404, "node not found")
