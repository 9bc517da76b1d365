"""The Prometheus text exposition format (version 0.0.4), written by hand.

prometheus_client's writer appends ``_total`` to every counter's name, and Centrifugo's counters
mostly have none (``centrifugo_client_num_reply_errors``); the names must stay Centrifugo's for
dashboards and alerts to carry over, so rotary writes the format itself. See
https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LAST = ("le", "quantile")
"""Written after the other labels, which come sorted by name, as Go's client writes them."""

Sample = tuple[str, Sequence[tuple[str, str]], float]
"""Name suffix ("", "_bucket", "_sum", ...), label pairs in order, value."""


@dataclass
class Family:
    name: str
    type: str
    """counter, gauge, histogram or summary."""
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, labels: Sequence[tuple[str, str]], value: float, suffix: str = "") -> None:
        self.samples.append((suffix, labels, value))


def number(value: float) -> str:
    """A value as Go's Prometheus client writes it: integers without a point, NaN, +Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render(families: Iterable[Family]) -> bytes:
    out: list[str] = []
    for family in families:
        out.append(f"# HELP {family.name} {_help(family.help)}\n# TYPE {family.name} {family.type}\n")
        for suffix, labels, value in family.samples:
            if labels:
                ordered = sorted(labels, key=lambda pair: (pair[0] in _LAST, pair[0]))
                pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in ordered)
                out.append(f"{family.name}{suffix}{{{pairs}}} {number(value)}\n")
            else:
                out.append(f"{family.name}{suffix} {number(value)}\n")
    return "".join(out).encode()
