"""The npm ``centrifuge`` SDK (JSON and Protobuf builds, WebSocket and HTTP streaming) through
rotary's proxies to a real HTTP backend, emulated headers included.

See https://centrifugal.dev/docs/server/proxy and https://centrifugal.dev/docs/transports/headers_emulation
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.proxy_backend import ProxyBackend

pytestmark = pytest.mark.compat

SCRIPTS = Path(__file__).with_name("js")


def config(backend: ProxyBackend) -> dict[str, Any]:
    def proxy(kind: str) -> dict[str, Any]:
        return {"endpoint": backend.http_endpoint(kind), "timeout": "3s"}

    return {
        "client": {
            "proxy": {"connect": {"enabled": True, **proxy("connect"), "emulated_headers": ["x-tenant"]}}
        },
        "channel": {
            "proxy": {"subscribe": proxy("subscribe"), "publish": proxy("publish")},
            "namespaces": [{"name": "px", "subscribe_proxy_enabled": True, "publish_proxy_enabled": True}],
        },
        "rpc": {"proxy": proxy("rpc"), "namespaces": [{"name": "app", "proxy_enabled": True}]},
        "http_stream": {"enabled": True},
    }


@pytest.mark.parametrize("transport", ["websocket", "http_stream"])
@pytest.mark.parametrize("protocol", ["json", "protobuf"])
async def test_every_proxy_kind_through_centrifuge_js(
    backend: ProxyBackend,
    start_rotary: Callable[[dict[str, Any]], Any],
    node: str,
    protocol: str,
    transport: str,
) -> None:
    backend.answers["connect"] = lambda req: {
        "result": {"user": "jsuser", "data": {"echo": req.get("data"), "name": req.get("name")}}
    }
    backend.answers["subscribe"] = lambda req: {"result": {"data": {"granted": req["channel"]}}}
    backend.answers["publish"] = lambda req: {"result": {"data": {"rewritten": req["data"]}}}
    backend.answers["rpc"] = lambda req: (
        {"error": {"code": 1002, "message": "refused by backend"}}
        if req["method"] == "app:fail"
        else {"result": {"data": {"answer": req["data"]}}}
    )
    server = start_rotary(config(backend))
    environment = {
        **os.environ,
        "ROTARY_WS_URL": server.ws_url,
        "ROTARY_HTTP_URL": server.http_url,
        "ROTARY_SECRET": "unused",
        "ROTARY_API_KEY": "unused",
        "ROTARY_PROTOCOL": protocol,
        "ROTARY_TRANSPORT": transport,
    }
    # the backend answers from this event loop, so the script runs beside it, not blocking it
    script = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPTS / "proxy_everything.mjs"),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(script.communicate(), 30)
    assert script.returncode == 0, f"{err.decode()}\n{out.decode()}"
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert seen == {
        "connectData": {"echo": {"hello": "proxy"}, "name": "js"},
        "subscribeData": {"granted": "px:js"},
        "published": {"rewritten": {"text": "hi"}},
        "user": "jsuser",
        "rpc": {"answer": {"q": 1}},
        "refused": {"code": 1002, "message": "refused by backend"},
    }
    connect = backend.requests("connect")[0]
    assert connect.headers["x-tenant"] == "acme"  # emulated: sent inside the connect command
    assert connect.body["protocol"] == protocol
    assert connect.body["transport"] == transport
