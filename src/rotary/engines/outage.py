"""Engine failures in the log: a line now and then while a backing service is away, not one per call.

While Redis or NATS is unavailable every client command, API call and background task that touches
it fails with EngineError, and each is answered (error 100, as Centrifugo answers). Logging each
with a traceback buried the log (1,254 lines when one node of a pair shut down). An EngineError is
the expected failure of a service, not a bug, so it goes out at WARNING without a traceback, at most
once per interval, saying how many failures were not logged since. Every other exception is a bug
and keeps its traceback at its call site.
See https://centrifugal.dev/docs/server/engines.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from rotary.engines.base import EngineError

__all__ = ["REPORT_INTERVAL", "EngineErrorLog", "report_engine_error"]

REPORT_INTERVAL = 10.0
"""Seconds between two lines about engine failures."""


class EngineErrorLog:
    """Rate-limits the log lines about engine failures of one process."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = REPORT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._next_report = -math.inf
        self._unreported = 0

    def report(self, what: str, error: EngineError) -> None:
        """Logs that ``what`` failed because of ``error``, unless a line went out in the interval."""
        now = self._clock()
        if now < self._next_report:
            self._unreported += 1
            return
        since = (
            f" ({self._unreported} more engine failures since the last report)" if self._unreported else ""
        )
        self._logger.warning("engine unavailable: %s failed: %s%s", what, error, since)
        self._next_report = now + self._interval
        self._unreported = 0


_process_log = EngineErrorLog(logging.getLogger("rotary.engines"))


def report_engine_error(what: str, error: EngineError) -> None:
    """Logs an engine failure through the process's rate limit (every site shares one outage)."""
    _process_log.report(what, error)
