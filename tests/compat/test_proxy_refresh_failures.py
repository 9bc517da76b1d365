"""Refresh and sub_refresh proxy failures, side by side with Centrifugo v6.9.1.

A server-side refresh has no client command to answer: what a failing backend costs the client is
whether its connection (or subscription) ends, and with which code. Centrifugo gives a connection or
subscription one more minute when the backend cannot answer (timeout, refused connection, an
untransformed status, a malformed body) and ends it as expired when an answer has no result
(a transformed status, an error or a disconnect in the body: 3005 for a connection, 2501 for a
subscription); an undecodable ``b64info`` closes a connection with 3004 and ends a subscription as
expired (figures from Centrifugo v6.9.1, kept by the comparison). Each case is one connection of a user
(or one channel) named after it, all refreshed at once against one backend, so one Centrifugo and
one rotary process answer every case. See https://centrifugal.dev/docs/server/proxy#refresh-proxy
and https://centrifugal.dev/docs/server/proxy#sub-refresh-proxy
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers.centrifugo import centrifugo_process
from helpers.env import free_port
from helpers.proxy_backend import Hang, ProxyBackend, Status

pytestmark = pytest.mark.compat

Start = Callable[[dict[str, Any]], Any]

TIMEOUT = 0.5
"""The proxies' timeout, seconds."""
SETTLED = 3.0
"""Seconds after the backend saw (or failed to see) a refresh within which an ending is expected.
Only a server that ends the connection late could be misjudged, and both are judged alike."""


def soon() -> int:
    return int(time.time()) + 2


FAILURES: dict[str, Any] = {
    "status-500": lambda req: Status(500),
    "status-403-to-error": lambda req: Status(403),
    "status-410-to-disconnect": lambda req: Status(410),
    "status-404-untransformed": lambda req: Status(404),
    "malformed": lambda req: b"{not json",
    "wrong-type": lambda req: {"result": {"expire_at": "soon"}},
    "timeout": lambda req: Hang(),
    "no-result": lambda req: {},
    "error": lambda req: {"error": {"code": 1000, "message": "no"}},
    "disconnect": lambda req: {"disconnect": {"code": 4500, "reason": "no"}},
    "expired": lambda req: {"result": {"expired": True}},
    "past-expiry": lambda req: {"result": {"expire_at": 1}},
    "bad-base64": lambda req: {"result": {"expire_at": soon() + 60, "b64info": "%%%"}},
}

TRANSFORMS = [
    {"status_code": 403, "to_error": {"code": 403, "message": "forbidden", "temporary": False}},
    {"status_code": 410, "to_disconnect": {"code": 4410, "reason": "gone"}},
]


def proxy(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "timeout": f"{int(TIMEOUT * 1000)}ms",
        "http": {"status_to_code_transforms": TRANSFORMS},
    }


def config(backend: ProxyBackend, refresh_endpoint: str) -> dict[str, Any]:
    """Connect and subscribe through the backend; refresh at ``refresh_endpoint``; sub_refresh of
    the ``px`` namespace through the backend, of ``down`` at a port nobody listens on."""
    refused = f"http://127.0.0.1:{free_port()}/sub_refresh"
    return {
        "client": {
            "allowed_origins": ["*"],
            # subscriptions are checked for expiry with presence, a delay after it
            "presence_update_interval": "1s",
            "expired_sub_close_delay": "1s",
            "proxy": {
                "connect": {"enabled": True, **proxy(backend.http_endpoint("connect"))},
                "refresh": {"enabled": True, **proxy(refresh_endpoint)},
            },
        },
        "proxies": [{"name": "down", **proxy(refused)}],
        "channel": {
            "proxy": {
                "subscribe": proxy(backend.http_endpoint("subscribe")),
                "sub_refresh": proxy(backend.http_endpoint("sub_refresh")),
            },
            "namespaces": [
                {"name": "px", "subscribe_proxy_enabled": True, "sub_refresh_proxy_enabled": True},
                {
                    "name": "down",
                    "subscribe_proxy_enabled": True,
                    "sub_refresh_proxy_enabled": True,
                    "sub_refresh_proxy_name": "down",
                },
            ],
        },
    }


async def ending(ws: aiohttp.ClientWebSocketResponse, channel: str, deadline: float) -> tuple[str, Any]:
    """("close", code), ("unsubscribe", code) for ``channel``, or ("open", None) at ``deadline``."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if message.type == aiohttp.WSMsgType.CLOSE:  # its code, whatever the closing handshake did
            return "close", message.data
        if message.type != aiohttp.WSMsgType.TEXT:
            return "close", ws.close_code
        for line in message.data.splitlines():
            push = json.loads(line).get("push", {})
            if push.get("channel") == channel and "unsubscribe" in push:
                return "unsubscribe", push["unsubscribe"].get("code")
    return "open", None


async def refreshed(backend: ProxyBackend, kind: str, key: str, value: str) -> None:
    """Until the backend got the refresh of this case (the server asks at expiry)."""
    async with asyncio.timeout(20):
        while not any(seen.body.get(key) == value for seen in backend.requests(kind)):
            await asyncio.sleep(0.05)


async def connection_outcome(ws_url: str, backend: ProxyBackend, case: str) -> tuple[str, Any]:
    """How the connection of user ``case`` ends after its refresh (``refused``: none arrives)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps({"id": 1, "connect": {"data": {"case": case}}}))
        reply = json.loads((await ws.receive(timeout=10)).data)
        assert "connect" in reply, reply
        if case == "refused":
            deadline = time.monotonic() + 3 + SETTLED
        else:
            await refreshed(backend, "refresh", "user", case)
            deadline = time.monotonic() + TIMEOUT + SETTLED
        return await ending(ws, "", deadline)


async def subscription_outcome(ws_url: str, backend: ProxyBackend, channel: str) -> tuple[str, Any]:
    """How the subscription to ``channel`` ends after its refresh (the ``down`` namespace: none arrives)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps({"id": 1, "connect": {"data": {"case": "sub"}}}))
        await ws.receive(timeout=10)
        await ws.send_str(json.dumps({"id": 2, "subscribe": {"channel": channel}}))
        reply = json.loads((await ws.receive(timeout=10)).data)
        assert "subscribe" in reply, reply
        if channel.startswith("down:"):
            deadline = time.monotonic() + 5 + SETTLED
        else:
            await refreshed(backend, "sub_refresh", "channel", channel)
            deadline = time.monotonic() + TIMEOUT + SETTLED
        return await ending(ws, channel, deadline)


def script(backend: ProxyBackend) -> None:
    """Users and channels named after a case get that case's answer at refresh."""

    def connect(req: dict[str, Any]) -> dict[str, Any]:
        case = req["data"]["case"]  # "sub": a subscriber's connection, which never expires
        return {"result": {"user": case, "expire_at": soon() if case != "sub" else 0}}

    backend.answers["connect"] = connect
    backend.answers["subscribe"] = lambda req: {"result": {"expire_at": soon()}}
    backend.answers["refresh"] = lambda req: FAILURES[req["user"]](req)
    backend.answers["sub_refresh"] = lambda req: FAILURES[req["channel"].split(":", 1)[1]](req)


async def outcomes(server: Any, backend: ProxyBackend) -> dict[str, tuple[str, Any]]:
    cases = list(FAILURES)
    channels = [f"px:{case}" for case in cases] + ["down:refused"]
    ended = await asyncio.gather(
        *(connection_outcome(server.ws_url, backend, case) for case in cases),
        *(subscription_outcome(server.ws_url, backend, channel) for channel in channels),
    )
    return dict(
        zip(
            [f"refresh {case}" for case in cases] + [f"sub_refresh {c}" for c in channels], ended, strict=True
        )
    )


async def test_refresh_and_sub_refresh_failures_end_as_in_centrifugo(
    backend: ProxyBackend, start_rotary: Start, tmp_path: Path
) -> None:
    script(backend)
    settings = config(backend, backend.http_endpoint("refresh"))
    with centrifugo_process(tmp_path / "centrifugo", settings) as centrifugo:
        expected = await outcomes(centrifugo, backend)
    backend.seen.clear()
    rotary = start_rotary(settings)
    got = await outcomes(rotary, backend)
    assert got == expected
    assert expected["refresh status-500"] == ("open", None)  # the comparison covers both kinds of ending
    assert expected["refresh expired"] == ("close", 3005)


async def test_refused_refresh_gives_the_connection_time_as_in_centrifugo(
    backend: ProxyBackend, start_rotary: Start, tmp_path: Path
) -> None:
    script(backend)
    settings = config(backend, f"http://127.0.0.1:{free_port()}/refresh")
    with centrifugo_process(tmp_path / "centrifugo", settings) as centrifugo:
        expected = await connection_outcome(centrifugo.ws_url, backend, "refused")
    rotary = start_rotary(settings)
    assert await connection_outcome(rotary.ws_url, backend, "refused") == expected
