"""The front door's tests run on asyncio's loop and on uvloop, the standalone server's: their
transports differ (uvloop's are not subclasses of asyncio.Transport)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
import uvloop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
