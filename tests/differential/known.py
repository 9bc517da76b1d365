"""Differences from Centrifugo that rotary must still fix in code the lead owns (node, session,
protocol, transports, engines).

Each is a reason and, where the difference can be cut out of a transcript, a ``hide`` function that
removes exactly it from both servers' normalized records. A scenario showing a difference with a
``hide`` must still match once it is hidden (so the difference cannot mask another one), and is then
reported as xfail; it fails when the difference no longer shows, so that the fix removes the mark.
A difference without ``hide`` marks the whole scenario xfail(strict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Known:
    reason: str
    hide: Callable[[Any], Any] | None = None


CLIENT_NUMBERS = Known(
    'a JSON-protocol client publishes data {"a": 1e5, "b": 1.50, "c": 123456789012345678901234567890}: '
    'Centrifugo delivers the bytes as sent; rotary delivers {"a":100000.0,"b":1.5,'
    '"c":1.2345678901234568e+29} (the JSON codec re-serializes raw fields: protocol/json_mapping.py; '
    "the big integer is corrupted). The server API had the same fault (fixed in api/codec.py)"
)
