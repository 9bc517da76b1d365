"""Go duration strings ("25s", "500ms", "1m30s", "720h") <-> float seconds.

Centrifugo config files and environment variables spell durations the way Go's ``time.ParseDuration``
reads them, and ``defaultconfig`` writes them back the way Go's ``Duration.String`` prints them, so a
config round-trips between rotary and Centrifugo unchanged.
See https://centrifugal.dev/docs/server/configuration#setting-time-duration-options
"""

from __future__ import annotations

from rotary.protocol.go_duration import parse_duration as parse_duration

_NANOS_PER_UNIT = (("h", 3600 * 10**9), ("m", 60 * 10**9))
_SUBSECOND_UNITS = (("ms", 10**6), ("µs", 10**3), ("ns", 1))


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String`` of the given seconds: "25s", "500ms", "720h0m0s", "1m30s", "0s"."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 10**9:
        return sign + _format_subsecond(nanos)
    out: list[str] = []
    for unit, size in _NANOS_PER_UNIT:
        count, nanos = divmod(nanos, size)
        if count or out:
            out.append(f"{count}{unit}")
    return sign + "".join(out) + _decimal(nanos, 10**9) + "s"


def _format_subsecond(nanos: int) -> str:
    for unit, size in _SUBSECOND_UNITS:
        if nanos >= size:
            return _decimal(nanos, size) + unit
    raise AssertionError("unreachable: nanos > 0")


def _decimal(value: int, size: int) -> str:
    whole, frac = divmod(value, size)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
