"""Who may open a real-time connection: the node-wide rate (``client.connection_rate_limit``), the
node-wide count (``client.connection_limit``) and shutdown, checked once for every connection endpoint
in Centrifugo's order, before the endpoint's own checks (origin, method, body).

Centrifugo v6.9.1 guards its connection endpoints with Go's ``rate.NewLimiter(rate.Every(time.Second),
connection_rate_limit)``: a bucket that starts full with ``connection_rate_limit`` tokens and regains
one token per second, whatever the limit. A request that finds the bucket empty gets HTTP 503 before
any other check (https://centrifugal.dev/docs/server/configuration#clientconnection_rate_limit).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from rotary.node.node import Node

Clock = Callable[[], float]
"""Seconds on a monotonic scale; tests pass their own."""

REFILL_PER_SECOND = 1.0
"""Tokens regained per second: Centrifugo's ``rate.Every(time.Second)``."""


class ConnectionRateLimiter:
    """A token bucket holding at most ``burst`` tokens, refilled at REFILL_PER_SECOND."""

    def __init__(self, burst: int, clock: Clock = time.monotonic) -> None:
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()

    def has_token(self) -> bool:
        """Whether :meth:`allow` would take a token now; takes none."""
        return self._refilled(self._clock()) >= 1.0

    def allow(self) -> bool:
        """Takes one token if there is one; False (nothing taken) when the bucket is empty."""
        now = self._clock()
        self._tokens = self._refilled(now)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _refilled(self, now: float) -> float:
        """The tokens held at ``now``: those left plus one a second since the last take, at most ``burst``."""
        return min(self._burst, self._tokens + max(0.0, now - self._last) * REFILL_PER_SECOND)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admitted(
    handler: Handler, node: Node, limiter: ConnectionRateLimiter | None, connection_limit: Callable[[], int]
) -> Handler:
    """``handler`` behind Centrifugo's connection middleware: 503 when the rate bucket (shared by
    every connection endpoint) is empty, when the node holds ``connection_limit()`` clients (read per
    request, as Centrifugo does, so that a config reload changes it), or when it is shutting down."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not admits(node, limiter, connection_limit):
            return web.Response(status=503, text="Service Unavailable")
        return await handler(request)

    return guarded


def admits(node: Node, limiter: ConnectionRateLimiter | None, connection_limit: Callable[[], int]) -> bool:
    """The admission checks alone, for endpoints outside aiohttp (WebTransport over HTTP/3) too."""
    if limiter is not None and not limiter.allow():
        return False
    limit = connection_limit()
    if limit and len(node.hub.clients) >= limit:
        if node.metrics is not None:
            node.metrics.connection_limit += 1
        return False
    return not node.closing


def would_admit(
    node: Node, limiter: ConnectionRateLimiter | None, connection_limit: Callable[[], int]
) -> bool:
    """What :func:`admits` would answer now, without its effects (no token taken, nothing counted):
    a caller that may still pass the request on to the endpoint behind the gate asks this first, so
    that a refusal is counted once, by the gate."""
    if limiter is not None and not limiter.has_token():
        return False
    limit = connection_limit()
    if limit and len(node.hub.clients) >= limit:
        return False
    return not node.closing
