"""Fixtures of the API tests: a whole server in process (tests/helpers/server.py) built from the
config of api_settings.py, and an executor on its node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from api_settings import StackFactory, make_config
from helpers.server import InProcessServer, start_in_process

from rotary.server.api.executor import ApiExecutor
from rotary.server.channels import ChannelRules


@pytest.fixture
async def make_stack() -> AsyncIterator[StackFactory]:
    """``await make_stack(**http_api)`` starts a server; every one started stops after the test."""
    made: list[InProcessServer] = []

    async def make(**http_api: Any) -> InProcessServer:
        made.append(await start_in_process(make_config(**http_api)))
        return made[-1]

    yield make
    for stack in made:
        await stack.close()


@pytest.fixture
async def stack(make_stack: StackFactory) -> InProcessServer:
    return await make_stack()


@pytest.fixture
def api(stack: InProcessServer) -> ApiExecutor:
    """An executor on the stack's node, for calling methods without HTTP."""
    return ApiExecutor(stack.node, stack.config, ChannelRules(stack.config.channel))
