"""SIGHUP: reload what Centrifugo reloads, keep the rest, and never act on a config that fails validation.

Centrifugo v6 re-reads its config file (with the same flags and environment) on SIGHUP, validates it
as at start, rebuilds the connection and subscription token verifiers and swaps in the new config for
everything it reads per request: client and channel options, namespaces, RPC namespaces. Ports,
engines, transports and node limits stay as they were until a restart, and Centrifugo does not say
which of them changed. A config that fails is logged and the running one kept. A systemd unit's
``ExecReload=/bin/kill -HUP $MAINPID`` relies on this. See
https://centrifugal.dev/docs/server/configuration and https://centrifugal.dev/docs/server/console_commands
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from rotary.server.config import ConfigError
from rotary.server.config.schema import Config

RELOADING = "reloading configuration"
RELOADED = "configuration successfully reloaded"
REFUSED = "error validating config"
"""Centrifugo's log messages, kept so that log searches written for it work on rotary."""

LoadConfig = Callable[[], Config]
"""Reads and validates the config the way the process read it at start; raises ConfigError."""

ApplyConfig = Callable[[Config], Awaitable[None]]
"""Swaps objects built from a valid config into the running server; raises ValueError if it cannot."""


async def reload_config(load: LoadConfig, apply: ApplyConfig, log: logging.Logger) -> bool:
    """One SIGHUP: the new config applied and logged, or refused with the reason and nothing changed."""
    log.info("signal received: hangup")
    log.info(RELOADING)
    try:
        config = load()
    except ConfigError as exc:
        log.error("%s: %s", REFUSED, "; ".join(exc.problems))
        return False
    try:
        await apply(config)
    except ValueError as exc:
        log.error("error reloading: %s", exc)
        return False
    log.info(RELOADED)
    return True
