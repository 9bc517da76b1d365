"""What every fuzz target shares: one event loop, a trap for logged errors, a recording transport.

A target runs thousands of inputs per second against one server, so everything expensive (the
node, the HTTP server, the token keys) is built once; each input gets a fresh connection or request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from rotary.protocol import codes
from rotary.protocol.codec import ProtocolType
from rotary.protocol.framing import ws_frame
from rotary.server.config import ConfigError
from rotary.server.config.convert import Report, build
from rotary.server.config.schema import Config
from rotary.server.config.validate import validate

T = TypeVar("T")


class ContractBroken(AssertionError):
    """rotary answered an input in a way its contract forbids (a crash, a 5xx, a leak, error 100)."""


class ErrorLogTrap(logging.Handler):
    """Collects the records rotary logs at ERROR or above: each one is an unexpected failure."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def check(self) -> None:
        """Raises ContractBroken naming the first record logged since the last check."""
        if self.records:
            record = self.records[0]
            self.records.clear()
            detail = self.format(record) if record.exc_info else record.getMessage()
            raise ContractBroken(f"rotary logged an error: {detail}")


class Harness:
    """One event loop and one error trap for the lifetime of a fuzzing process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.trap = ErrorLogTrap()
        self.trap.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger = logging.getLogger("rotary")
        logger.addHandler(self.trap)
        logger.setLevel(logging.ERROR)
        logger.propagate = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        """Closes the loop and takes the trap off rotary's logger (the suite runs in one process)."""
        self.loop.close()
        logger = logging.getLogger("rotary")
        logger.removeHandler(self.trap)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)

    async def settle(self, baseline: set[asyncio.Task[Any]], turns: int = 50) -> None:
        """Lets the loop run until no task started by the input is left; a task still there after
        ``turns`` passes is a leak (an input must not leave work behind once its connection ended)."""
        for _ in range(turns):
            leftover = asyncio.all_tasks() - baseline - {asyncio.current_task()}
            if not leftover:
                return
            await asyncio.sleep(0)
        names = sorted(task.get_coro().__qualname__ for task in leftover)  # type: ignore[union-attr]
        raise ContractBroken(f"tasks left behind by one input: {names}")


def config_from(raw: dict[str, Any]) -> Config:
    """A validated Config from a raw tree, as a config file would give it."""
    report = Report()
    config: Config = build(Config, raw, "", report)
    problems = report.problems + validate(config)
    if problems:
        raise ConfigError(problems)
    return config


class RecordingTransport:
    """A Transport (rotary.node.transport) that keeps the payloads rotary writes, unframed."""

    name = "websocket"
    unidirectional = False

    def __init__(self, protocol: ProtocolType) -> None:
        self.protocol = protocol
        self.framing = "ws-binary" if protocol is ProtocolType.PROTOBUF else "ws-text"
        self.payloads: list[bytes] = []
        self.prepared: int = 0
        self.closed_with: codes.Disconnect | None = None
        self.aborted = False

    def frame(self, payload: bytes) -> bytes:
        return ws_frame(payload, self.protocol is ProtocolType.PROTOBUF)

    def write(self, payload: bytes) -> None:
        self.payloads.append(payload)

    def write_prepared(self, frame: bytes) -> int:
        self.prepared += 1
        return 0

    def close(self, disconnect: codes.Disconnect) -> int:
        self.closed_with = disconnect
        return 0

    def abort(self) -> None:
        self.aborted = True
