"""node/deadlines.py: many connections' deadlines share a few loop timers, fire in their tick and
never early, and one failing connection does not stop the others (issue 15 point 5)."""

from __future__ import annotations

import asyncio

from rotary.node.deadlines import Deadlines


class Waiter:
    def __init__(self, loop: asyncio.AbstractEventLoop, fired: list[float], fail: bool = False) -> None:
        self._loop = loop
        self._fired = fired
        self._fail = fail

    def deadline_due(self) -> None:
        self._fired.append(self._loop.time())
        if self._fail:
            raise RuntimeError("boom")


async def test_ten_thousand_deadlines_hold_one_timer_per_tick() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(resolution=0.05)
    fired: list[float] = []
    due = loop.time() + 0.2
    tick = deadlines.tick_of(due)
    items = [Waiter(loop, fired, fail=i == 0) for i in range(10_000)]
    for item in items:
        deadlines.add(item, tick)
    assert deadlines.timers == 1
    assert deadlines.pending == 10_000
    while len(fired) < 10_000:
        await asyncio.sleep(0.05)
    assert min(fired) >= due - 0.002  # the loop's timer resolution is a millisecond
    assert deadlines.timers == 0
    assert deadlines.pending == 0


async def test_removing_the_last_waiter_cancels_the_tick() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(resolution=0.05)
    fired: list[float] = []
    item = Waiter(loop, fired)
    tick = deadlines.tick_of(loop.time() + 0.1)
    deadlines.add(item, tick)
    deadlines.remove(item, tick)
    deadlines.remove(item, tick)  # idempotent
    assert deadlines.timers == 0
    await asyncio.sleep(0.2)
    assert fired == []
