"""Steady publishing through the server API while something breaks, and the check that nothing
accepted was lost without the subscriber being told (recovered: false after a resubscription).

Shared by the Redis and NATS fault tests (tests/compat) and the reliability kit's fault cycles.
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
        """(seq, offset) of every accepted publication, in order (offset 0 without history)."""
        self.refused: set[int] = set()
        self._seq = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            body, elapsed = await self._publish_next()
            if "error" in body:
                assert body == {"error": INTERNAL_ERROR} and elapsed < FAIL_FAST, (body, elapsed)
            await asyncio.sleep(0.02)

    async def last_round(self) -> None:
        """One more publication through each node, once the traffic stopped and every subscriber
        is subscribed again: without history, a subscriber that resubscribed after the last
        publications of the run cannot get them, and these show that it was told."""
        for _ in self._nodes:
            body, _ = await self._publish_next()
            assert "result" in body, body

    async def _publish_next(self) -> tuple[dict[str, Any], float]:
        seq, self._seq = self._seq, self._seq + 1
        node = self._nodes[seq % len(self._nodes)]
        body, elapsed = await timed_call(node, "publish", {"channel": self._channel, "data": {"seq": seq}})
        if "result" in body:
            self.accepted.append((seq, int(body["result"].get("offset", 0))))
        else:
            self.refused.add(seq)
        return body, elapsed

    def stop(self) -> None:
        self._stop.set()

    async def until(self, what: str, check: Callable[[], bool]) -> None:
        async def holds() -> bool:
            return check()

        await eventually(holds, what)


def recovered_false(name: str, ctx: Any) -> bool:
    """A resubscription that reported ``recovered: false``: the word on a channel with history."""
    return name == "on_subscribed" and bool(ctx.was_recovering) and not ctx.recovered


def insufficient_state(name: str, ctx: Any) -> bool:
    """The server ended the subscription with 2500 (the SDK resubscribes): the word on a channel
    without history, which has nothing to recover from."""
    return name == "on_subscribing" and ctx.code == 2500


def assert_no_silent_loss(
    records: list[tuple[str, Any]],
    accepted: list[int],
    refused: set[int],
    told_by: Callable[[str, Any], bool] = recovered_false,
    publishers: int = 1,
) -> None:
    """The subscriber got the accepted publications once each and in order, and wherever some are
    missing it was told so (``told_by``: by default a resubscription that reported ``recovered:
    false``, the signal to reload state). A refused call may still have reached Redis before it
    died; delivering it loses nothing, so those are left out.

    With ``publishers`` > 1 (Traffic's nodes: seq n goes through node n % publishers) the order is
    checked per publishing node: NATS keeps the order of one connection only, and its publish
    returns once the message is buffered, so the publications of two nodes can swap (after a
    paused server resumes, for one); none may go missing without a word.
    """
    for publisher in range(publishers):
        mine = [seq for seq in accepted if seq % publishers == publisher]
        seen = [
            (name, ctx)
            for name, ctx in records
            if name != "on_publication" or ctx.pub.data["seq"] % publishers == publisher
        ]
        _assert_in_order(seen, mine, refused, told_by)


def _assert_in_order(
    records: list[tuple[str, Any]],
    accepted: list[int],
    refused: set[int],
    told_by: Callable[[str, Any], bool],
) -> None:
    position = {seq: index for index, seq in enumerate(accepted)}
    last, told = -1, False
    for step, (name, ctx) in enumerate(records):
        if told_by(name, ctx):
            told = True
        if name != "on_publication" or ctx.pub.data["seq"] in refused:
            continue
        index = position[ctx.pub.data["seq"]]
        assert index > last, f"seq {ctx.pub.data['seq']} arrived twice or out of order"
        before = _summary(records[max(0, step - 8) : step])
        assert index == last + 1 or told, f"lost without a word: {accepted[last + 1 : index]}, after {before}"
        last, told = index, False
    assert last == len(accepted) - 1, f"the last publications never arrived: {accepted[last + 1 :]}"


def last_events(records: list[tuple[str, Any]], count: int = 12) -> list[str]:
    """A subscriber's last events, for the message of a check that timed out waiting for it."""
    return _summary(records[-count:])


def _summary(records: list[tuple[str, Any]]) -> list[str]:
    """The events before a silent loss, short enough to read in an assertion message."""
    return [f"{name}({ctx.pub.data if name == 'on_publication' else ctx})" for name, ctx in records]
