"""Go duration strings ("25s", "500ms", "1m30s") read as float seconds, as ``time.ParseDuration``.

Centrifugo spells durations this way in its config and in Redis address URLs (``?io_timeout=2s``),
so both the config loader and the Redis engine read them here; formatting them back is the config
dumper's job (rotary.server.config.durations). See
https://centrifugal.dev/docs/server/configuration#setting-time-duration-options
"""

from __future__ import annotations

import re

UNIT_SECONDS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; raises ValueError the way Go rejects it (e.g. a bare "10")."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(body):
        raise ValueError(f"invalid duration {text!r}: expected number followed by a unit (ms, s, m, h)")
    return sign * total
