"""Publishing through the Redis broker: sequential vs concurrent publishes, in publications per second.

A private redis-server on a free port; one RedisBroker in this process publishes ``--count``
publications to ``--channels`` distinct channels, first one at a time (each awaited before the next),
then all at once (``asyncio.gather``, as the API's ``broadcast`` and a parallel ``batch`` do).
Concurrent publishes to one shard share round trips (one pipeline per round trip), so the second
number shows what coalescing buys. Each mode runs with history (the Lua script) and without (plain
PUBLISH). Publishes that fail (a client pool out of connections, say) are counted, not retried.
See https://centrifugal.dev/docs/server/engines#redis-engine.

Run from the repository root: ``.venv/bin/python bench/redis_publish.py [--count 10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from scale_procs import RedisServer

from rotary.engines.base import EngineError, PublishOptions
from rotary.engines.redis import RedisBroker, RedisBrokerOptions, RedisOptions
from rotary.protocol import pb

OPTIONS = {
    "history": PublishOptions(history_size=100, history_ttl=300.0),
    "no history": PublishOptions(),
}


class Silent:
    """The broker's event handler; this benchmark subscribes to nothing."""

    def handle_publication(self, *args: object) -> None: ...

    def handle_join(self, channel: str, info: pb.ClientInfo) -> None: ...

    def handle_leave(self, channel: str, info: pb.ClientInfo) -> None: ...

    def handle_resubscribed(self, channels: list[str]) -> None: ...

    def handle_interrupted(self, channels: list[str]) -> None: ...


async def sequential(broker: RedisBroker, channels: list[str], data: bytes, opts: PublishOptions) -> int:
    """Publishes one after another; returns how many failed."""
    failed = 0
    for channel in channels:
        try:
            await broker.publish(channel, data, opts)
        except EngineError:
            failed += 1
    return failed


async def concurrent(broker: RedisBroker, channels: list[str], data: bytes, opts: PublishOptions) -> int:
    """Publishes all at once; returns how many failed."""
    outcomes = await asyncio.gather(
        *(broker.publish(channel, data, opts) for channel in channels), return_exceptions=True
    )
    return sum(isinstance(outcome, EngineError) for outcome in outcomes)


MODES: dict[str, Callable[[RedisBroker, list[str], bytes, PublishOptions], Awaitable[int]]] = {
    "sequential": sequential,
    "concurrent": concurrent,
}


async def measure(port: int, count: int, channels: int) -> None:
    broker = RedisBroker(RedisBrokerOptions(RedisOptions(addresses=(f"127.0.0.1:{port}",), prefix="bench")))
    await broker.start(Silent())
    names = [f"bench:{n % channels}" for n in range(count)]
    data = b'{"text":"hello"}'
    print(f"{count} publications to {channels} channels, one redis-server on loopback")
    print(f"{'options':<12}{'mode':<12}{'publishes/s':>14}{'failed':>10}")
    try:
        for label, opts in OPTIONS.items():
            await sequential(broker, names[:100], data, opts)
            for mode, run in MODES.items():
                began = time.perf_counter()
                failed = await run(broker, names, data, opts)
                elapsed = time.perf_counter() - began
                print(f"{label:<12}{mode:<12}{count / elapsed:>14,.0f}{failed:>10,}")
    finally:
        await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=10_000)
    args = parser.parse_args()
    with RedisServer.start(None) as redis:
        asyncio.run(measure(redis.port, args.count, args.channels))


if __name__ == "__main__":
    main()
