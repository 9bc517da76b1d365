"""Centrifugo v4/v5's SockJS keys, read as rotary's ``sockjs`` section.

Centrifugo v5 turned SockJS on with a top-level boolean ``sockjs: true`` and tuned it with the
top-level ``sockjs_url`` and ``sockjs_heartbeat_delay`` (https://centrifugal.dev/docs/5/transports/sockjs);
v6 dropped SockJS. rotary serves it under its own section ``sockjs: {enabled, url, heartbeat_delay}``.
A v5 config brought over unchanged means "serve SockJS", so the boolean is taken as ``enabled`` and
the two flat keys as their section keys, each with a warning naming the new spelling.
"""

from __future__ import annotations

from typing import Any

from rotary.server.config import ConfigError

FLAT_KEYS = {"sockjs_url": "url", "sockjs_heartbeat_delay": "heartbeat_delay"}


def upgrade_sockjs(raw: dict[str, Any]) -> list[str]:
    """Rewrites the v5 SockJS keys of the parsed file ``raw`` in place; returns the warnings.

    Raises ConfigError when a flat key and its section key are both set: neither may win silently.
    """
    warnings: list[str] = []
    section = raw.get("sockjs")
    if isinstance(section, bool):
        spelled = str(section).lower()
        raw["sockjs"] = section = {"enabled": section}
        warnings.append(f"sockjs: {spelled} is the Centrifugo v5 form; read as sockjs.enabled: {spelled}")
    flat_keys = [flat for flat in FLAT_KEYS if flat in raw]
    if not flat_keys or not isinstance(section, dict | None):
        return warnings  # a sockjs value of another type is reported by the schema
    if section is None:
        raw["sockjs"] = section = {}
    for flat in flat_keys:
        key = FLAT_KEYS[flat]
        if key in section:
            raise ConfigError(
                [f"{flat} (the Centrifugo v5 form of sockjs.{key}) and sockjs.{key} are both set"]
            )
        section[key] = raw.pop(flat)
        warnings.append(f"{flat} is the Centrifugo v5 form; read as sockjs.{key}")
    return warnings
