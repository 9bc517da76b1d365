"""Logging set up from the ``log`` section, written where and how Centrifugo writes it.

As Centrifugo (zerolog) does: with ``log.file`` every line is a JSON object appended to the file;
without it, a terminal on stdout gets readable lines on stdout, and anything else (a pipe, a file, a
container runtime) gets JSON lines on stderr. A JSON line has Centrifugo's keys: ``level`` (trace,
debug, info, warn, error, fatal), ``time`` (RFC 3339, UTC, seconds), ``message``, ``error`` for an
exception, and the fields a call site passes with ``extra=`` under Centrifugo's names (``client``,
``user``, ``channel``, ``transport``, ``reason``...). Nothing is formatted for a record below the
level, so debug calls cost a level check when debug is off. Centrifugo has no access log key.
See https://centrifugal.dev/docs/server/configuration#log.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from rotary.server.config.schema import LogConfig

TRACE = 5
"""Below DEBUG, for protocol frame dumps."""

LEVELS: dict[str, int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}

ZEROLOG_LEVELS: dict[int, str] = {
    TRACE: "trace",
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}

FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"

_RECORD_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
"""Attributes every LogRecord has; anything else on a record came from ``extra=`` and is a field."""


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record, in the order they were given."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_KEYS}


class JsonFormatter(logging.Formatter):
    """One zerolog-shaped JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"level": ZEROLOG_LEVELS.get(record.levelno, record.levelname.lower())}
        entry.update(fields(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        entry["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        entry["message"] = record.getMessage()
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal, with the fields after the message as key=value."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = fields(record)
        if not extra:
            return line
        return line + " " + " ".join(f"{k}={v}" for k, v in extra.items())


def setup_logging(log: LogConfig) -> logging.Logger:
    """Configure the ``rotary`` logger tree; later calls replace the previous handler.

    Records still propagate to the root logger, which has no handler in the server process, so an
    embedding application or a test harness can still observe them.
    """
    logging.addLevelName(TRACE, "TRACE")
    logger = logging.getLogger("rotary")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    handler: logging.Handler
    if log.file:
        handler = logging.FileHandler(log.file, encoding="utf-8")
        handler.setFormatter(JsonFormatter())
    elif sys.stdout.isatty():
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(ConsoleFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(LEVELS.get(log.level, logging.INFO))
    return logger
