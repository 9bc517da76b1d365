"""Engine failures are logged a line now and then, without tracebacks; bugs keep theirs.
Real Node, memory engine with history reads that fail as an engine away would."""

from __future__ import annotations

import asyncio
import logging

import pytest
from helpers.recording import RecordingTransport, connected, json_messages, send

from rotary.engines.base import EngineError, HistoryQuery, HistoryResult
from rotary.engines.memory import MemoryBroker
from rotary.engines.outage import EngineErrorLog
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.hooks import ClientView
from rotary.node.node import Node, NodeConfig
from rotary.protocol import codes, pb


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_counting_the_failures_in_between(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = EngineErrorLog(logging.getLogger("test.outage"), interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.outage"):
        for clock.now in (0.0, 1.0, 9.9):
            outage.report("publish", EngineError("redis: connection refused"))
        clock.now = 10.0
        outage.report("history", EngineError("redis: connection refused"))

    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "engine unavailable: publish failed: redis: connection refused"),
        (
            logging.WARNING,
            "engine unavailable: history failed: redis: connection refused"
            " (2 more engine failures since the last report)",
        ),
    ]
    assert all(record.exc_info is None for record in caplog.records)


class HistoryAllowed(AllowAllHooks):
    async def on_history(self, client: ClientView, request: pb.HistoryRequest) -> float:
        return 0.0


class UnavailableHistory(MemoryBroker):
    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        raise EngineError("history store unavailable")


async def test_commands_and_background_tasks_failing_on_the_engine_log_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = Node(NodeConfig(ping_interval=0), hooks=HistoryAllowed(), broker=UnavailableHistory())
    await node.start()
    try:
        transport = RecordingTransport()
        client = await connected(node, transport, "news")
        with caplog.at_level(logging.WARNING):
            for n in range(3):
                await send(client, pb.Command(id=10 + n, history=pb.HistoryRequest(channel="news")))
            node.spawn(node.read_history("news", HistoryQuery()))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        errors = [m["error"] for m in json_messages(transport) if "error" in m]
        assert (
            errors
            == [
                {
                    "code": codes.ERROR_INTERNAL.code,
                    "message": codes.ERROR_INTERNAL.message,
                    "temporary": True,
                }
            ]
            * 3
        )
        assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []

        async def bug() -> None:
            raise RuntimeError("a bug")

        with caplog.at_level(logging.ERROR):
            node.spawn(bug())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        assert [r.exc_info is not None for r in caplog.records if r.levelno >= logging.ERROR] == [True]
    finally:
        await node.shutdown()
