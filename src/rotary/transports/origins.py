"""The Origin check of connection endpoints (client.allowed_origins).

An empty list admits only requests without an Origin header (non-browser clients); patterns may use
`*` wildcards, matched case-insensitively, and `["*"]` admits every origin.
See https://centrifugal.dev/docs/server/configuration#clientallowed_origins.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Sequence

from aiohttp import web

log = logging.getLogger("rotary.server.origins")


def origin_checker(allowed: Sequence[str]) -> Callable[[web.Request], bool]:
    return for_requests(origin_value_checker(allowed))


def for_requests(check: Callable[[str], bool]) -> Callable[[web.Request], bool]:
    """An Origin check of header values applied to aiohttp requests."""
    return lambda request: check(request.headers.get("Origin", ""))


def origin_value_checker(allowed: Sequence[str]) -> Callable[[str], bool]:
    """Whether an Origin header value ("" when there is none) may connect."""
    patterns = tuple(p.lower() for p in allowed)
    if patterns == ("*",):
        log.warning(
            'client.allowed_origins is ["*"]: every origin may connect; set explicit origins in production'
        )

    def check(origin: str) -> bool:
        if not origin:
            return True
        if not patterns:
            log.info("request Origin is not authorized due to empty allowed_origins: %s", origin)
            return False
        if any(fnmatch.fnmatchcase(origin.lower(), p) for p in patterns):
            return True
        log.info("request Origin is not authorized: %s (allowed_origins %s)", origin, list(allowed))
        return False

    return check
