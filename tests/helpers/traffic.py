"""Steady publishing through the server API while something breaks, and the check that nothing
accepted was lost without the subscriber being told (recovered: false after a resubscription).

Shared by the Redis fault tests (tests/compat) and the reliability kit's fault cycles.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from helpers.cluster import RotaryNode, eventually

INTERNAL_ERROR = {"code": 100, "message": "internal server error"}
FAIL_FAST = 2.5
"""Seconds an API call may take while Redis is away: the 1 s io_timeout and some slack, never a hang."""


async def timed_call(node: RotaryNode, method: str, payload: dict[str, Any]) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    body = await node.call(method, payload)
    return body, time.monotonic() - began


class Traffic:
    """Publishes ``{"seq": n}`` through the API of alternate nodes, one call at a time, so the
    acceptance order is the stream order; it remembers which calls were accepted."""

    def __init__(self, nodes: list[RotaryNode], channel: str) -> None:
        self._nodes = nodes
        self._channel = channel
        self.accepted: list[tuple[int, int]] = []
        """(seq, offset) of every accepted publication, in order."""
        self.refused: set[int] = set()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            node = self._nodes[seq % len(self._nodes)]
            request = {"channel": self._channel, "data": {"seq": seq}}
            body, elapsed = await timed_call(node, "publish", request)
            if "result" in body:
                self.accepted.append((seq, int(body["result"]["offset"])))
            else:
                assert body == {"error": INTERNAL_ERROR} and elapsed < FAIL_FAST, (body, elapsed)
                self.refused.add(seq)
            seq += 1
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()

    async def until(self, what: str, check: Callable[[], bool]) -> None:
        async def holds() -> bool:
            return check()

        await eventually(holds, what)


def assert_no_silent_loss(records: list[tuple[str, Any]], accepted: list[int], refused: set[int]) -> None:
    """The subscriber got the accepted publications once each and in order, and wherever some are
    missing it was told so by a resubscription that reported ``recovered: false`` (the signal to
    reload state). A refused call may still have reached Redis before it died; delivering it loses
    nothing, so those are left out."""
    position = {seq: index for index, seq in enumerate(accepted)}
    last, told = -1, False
    for name, ctx in records:
        if name == "on_subscribed" and ctx.was_recovering and not ctx.recovered:
            told = True
        if name != "on_publication" or ctx.pub.data["seq"] in refused:
            continue
        index = position[ctx.pub.data["seq"]]
        assert index > last, f"seq {ctx.pub.data['seq']} arrived twice or out of order"
        assert index == last + 1 or told, f"lost without a word: {accepted[last + 1 : index]}"
        last, told = index, False
    assert last == len(accepted) - 1, f"the last publications never arrived: {accepted[last + 1 :]}"
