"""Connection deadlines (ping, pong, stale, expiry, drop) on a few shared loop timers.

Every connection has one next deadline (``Session.next_deadline``). One loop timer per connection
would cost a timer handle and its libuv timer (about 600 bytes) for each idle connection, re-created
at every ping interval; here deadlines are rounded up to the next tick of ``RESOLUTION`` seconds and
each tick that has deadlines holds one timer, so the number of loop timers depends on how the
deadlines spread over time, never on how many connections there are. A deadline fires at most one
tick late, never early. (Issue 15 point 5; Centrifugo's client timers are described at
https://centrifugal.dev/docs/transports/client_protocol#ping-pong.)
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Protocol

log = logging.getLogger("rotary.node.deadlines")

RESOLUTION = 0.1
"""Seconds between ticks: the most a deadline may fire late."""


class Due(Protocol):
    def deadline_due(self) -> None: ...


class Deadlines:
    """Groups of connections by the tick their deadline falls in, one loop timer per group."""

    def __init__(self, resolution: float = RESOLUTION) -> None:
        self._resolution = resolution
        self._ticks: dict[int, dict[Due, None]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def tick_of(self, when: float) -> int:
        return math.ceil(when / self._resolution)

    def add(self, item: Due, tick: int) -> None:
        group = self._ticks.get(tick)
        if group is None:
            group = self._ticks[tick] = {}
            loop = asyncio.get_running_loop()
            self._timers[tick] = loop.call_at(tick * self._resolution, self._fire, tick)
        group[item] = None

    def remove(self, item: Due, tick: int) -> None:
        group = self._ticks.get(tick)
        if group is None:
            return
        group.pop(item, None)
        if not group:
            del self._ticks[tick]
            self._timers.pop(tick).cancel()

    @property
    def timers(self) -> int:
        """Loop timers held right now (for tests and the benchmark's census)."""
        return len(self._timers)

    @property
    def pending(self) -> int:
        """Connections waiting for a deadline."""
        return sum(len(group) for group in self._ticks.values())

    def _fire(self, tick: int) -> None:
        del self._timers[tick]
        group = self._ticks.pop(tick)
        for item in group:
            try:
                item.deadline_due()
            except Exception:  # one connection's failure must not stop the others' deadlines
                log.exception("error handling a connection deadline")
