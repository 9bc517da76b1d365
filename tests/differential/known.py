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
