"""SIGHUP: Centrifugo reloads part of its config on it, and systemd units send it (ExecReload).

rotary cannot reload yet. SIGHUP's default action would end the process at once, without the 3001
goodbye to clients, so the server and the ``--workers`` supervisor log this line and carry on.
See https://centrifugal.dev/docs/server/configuration
"""

from __future__ import annotations

import logging

NOT_SUPPORTED = "SIGHUP received: config reload is not supported yet; the config is unchanged"


def reload_not_supported(log: logging.Logger) -> None:
    log.warning(NOT_SUPPORTED)
