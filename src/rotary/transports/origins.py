"""The Origin check of connection endpoints (client.allowed_origins), and the same-origin check that
mounts use by default.

An empty list admits only requests without an Origin header (non-browser clients); patterns may use
`*` wildcards, matched case-insensitively, and `["*"]` admits every origin.
See https://centrifugal.dev/docs/server/configuration#clientallowed_origins.
A mount inside a host application has no list by default: it admits the pages of the host itself
(an Origin whose host is the request's Host), which is what a browser sends for a same-origin page.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger("rotary.origins")

OriginRule = Callable[[str, str], bool]
"""Whether an Origin header value ("" when there is none) may connect to a request for this Host."""


def origin_checker(allowed: Sequence[str]) -> Callable[[web.Request], bool]:
    return for_requests(origin_value_checker(allowed))


def for_requests(check: Callable[[str], bool]) -> Callable[[web.Request], bool]:
    """An Origin check of header values applied to aiohttp requests."""
    return lambda request: check(request.headers.get("Origin", ""))


def origin_value_checker(allowed: Sequence[str]) -> Callable[[str], bool]:
    """Whether an Origin header value ("" when there is none) may connect; a refusal is logged."""
    if tuple(p.lower() for p in allowed) == ("*",):
        log.warning(
            'client.allowed_origins is ["*"]: every origin may connect; set explicit origins in production'
        )
    matches = origin_value_matcher(allowed)

    def check(origin: str) -> bool:
        if matches(origin):
            return True
        if not allowed:
            log.info("request Origin is not authorized due to empty allowed_origins: %s", origin)
        else:
            log.info("request Origin is not authorized: %s (allowed_origins %s)", origin, list(allowed))
        return False

    return check


def origin_value_matcher(allowed: Sequence[str]) -> Callable[[str], bool]:
    """The same answer without logging, for a caller that passes a refused request on to the check
    that logs it."""
    patterns = tuple(p.lower() for p in allowed)

    def matches(origin: str) -> bool:
        if not origin:
            return True
        return any(fnmatch.fnmatchcase(origin.lower(), p) for p in patterns)

    return matches


def origin_rule(allowed: Sequence[str] | None) -> OriginRule:
    """A mount's rule: ``allowed`` patterns as Centrifugo reads them, or the same origin only (None)."""
    if allowed is None:
        return same_origin
    check = origin_value_checker(allowed)
    return lambda origin, host: check(origin)


def same_origin(origin: str, host: str) -> bool:
    """No Origin (not a browser), or an Origin naming the Host the request was sent to."""
    if not origin:
        return True
    if urlsplit(origin).netloc.lower() == host.lower():
        return True
    log.info("request Origin %s is not the host %s: refused (pass allowed_origins to admit it)", origin, host)
    return False
