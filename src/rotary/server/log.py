"""Logging set up from the ``log`` section: level names as Centrifugo spells them, stdout or a file.

See https://centrifugal.dev/docs/server/configuration#log
"""

from __future__ import annotations

import logging
import sys

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

FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


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
    handler: logging.Handler = (
        logging.FileHandler(log.file, encoding="utf-8") if log.file else logging.StreamHandler(sys.stdout)
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(LEVELS.get(log.level, logging.INFO))
    return logger
