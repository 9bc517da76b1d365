"""rotary's Lua scripts, loaded once from the package's ``lua/`` directory.

Each script does one engine step atomically inside Redis; the header of each file lists its keys
and arguments. See https://centrifugal.dev/docs/server/engines#redis-engine.
"""

from __future__ import annotations

from importlib.resources import files

from rotary.engines.redis.pipeline import Script

__all__ = ["HISTORY", "PRESENCE_ADD", "PRESENCE_GET", "PRESENCE_REMOVE", "PUBLISH"]


def _load(name: str) -> Script:
    return Script(files("rotary.engines.redis").joinpath("lua", f"{name}.lua").read_text())


PUBLISH = _load("publish")
HISTORY = _load("history")
PRESENCE_ADD = _load("presence_add")
PRESENCE_GET = _load("presence_get")
PRESENCE_REMOVE = _load("presence_remove")
