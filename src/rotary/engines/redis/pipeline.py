"""Automatic pipelining: the commands of one Redis shard share round trips.

Every command of the engine (publish scripts, history and presence reads, plain PUBLISH) is queued
on its shard's ``AutoPipeline``. One round trip is in flight at a time; whatever callers issue
meanwhile, or within the same event-loop pass, goes out together as the next pipeline: one write of
every command, one read of every reply. A burst of publishes (the API's ``broadcast``, a parallel
``batch``, many clients publishing at once) therefore costs a handful of round trips instead of one
each, and uses one connection instead of one per concurrent caller.
See https://centrifugal.dev/docs/server/engines#redis-engine.

Order: calls are sent in call order and Redis runs one connection's commands in order, so the calls
for one channel keep their order. The one way a pipeline could break that is a Lua script missing
from Redis (it restarted, or another node's EVAL has not reached it yet): EVALSHA then fails with
NOSCRIPT and is sent again, after calls that followed it. So when one channel has several calls in a
pipeline, the first call of each script for that channel sends the script's source (EVAL), which
loads it before that channel's later calls run; calls of channels that appear once may fail with
NOSCRIPT and are simply sent again with the source.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from rotary.engines.base import EngineError
from rotary.engines.redis.exchange import Exchange

__all__ = ["MAX_PIPELINE", "AutoPipeline", "Script"]

log = logging.getLogger("rotary.engines.redis")

MAX_PIPELINE = 512
"""Most commands in one round trip; a longer queue goes out in several, one after another."""


class Script:
    """A Lua script, called by its SHA1 (EVALSHA) and sent whole (EVAL) when Redis may lack it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


@dataclass(slots=True)
class _Call:
    channel: str
    """Calls with equal ``channel`` keep their order."""
    args: tuple[Any, ...]
    """The command, or for a script: numkeys, keys and arguments."""
    script: Script | None
    future: asyncio.Future[Any]

    def command(self, with_source: bool) -> tuple[Any, ...]:
        if self.script is None:
            return self.args
        if with_source:
            return ("EVAL", self.script.source, *self.args)
        return ("EVALSHA", self.script.sha, *self.args)

    def settle(self, reply: Any, error: EngineError | None = None) -> None:
        if self.future.done():
            return
        if error is None:
            self.future.set_result(reply)
        else:
            self.future.set_exception(error)


class AutoPipeline:
    """The command queue of one shard and the task that sends it, one pipeline per round trip.

    A round trip fails after the I/O timeout, so a caller waits at most twice that (the round trip
    in flight, then its own); a call whose caller was cancelled before it was sent is never sent. A
    failed round trip (network, timeout) fails its calls and every call queued behind it, so a Redis
    that is down answers fast instead of once per queued pipeline.
    """

    def __init__(self, exchange: Exchange, name: str, io_timeout: float) -> None:
        self._exchange = exchange
        self._name = name
        self._io_timeout = io_timeout
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    async def command(self, channel: str, *args: Any) -> Any:
        """Runs one command, ordered after the earlier calls for ``channel``."""
        return await self._call(_Call(channel, args, None, self._future()))

    async def script(self, channel: str, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Runs a Lua script, ordered after the earlier calls for ``channel``."""
        return await self._call(_Call(channel, (len(keys), *keys, *args), script, self._future()))

    async def close(self) -> None:
        """Fails what is queued or in flight; later calls fail at once."""
        self._closed = True
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        self._fail_queue(self._error("the connection is closed"))
        await self._exchange.close()

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _call(self, call: _Call) -> Any:
        if self._closed:
            raise self._error("the connection is closed")
        self._queue.append(call)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._drain(), name=f"rotary.redis.{self._name}"
            )
        return await call.future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_PIPELINE]
                del self._queue[:MAX_PIPELINE]
                await self._round_trip([call for call in batch if not call.future.done()])
        finally:
            if self._sender is asyncio.current_task():
                self._sender = None

    async def _round_trip(self, calls: list[_Call]) -> None:
        if not calls:
            return
        commands = _commands(calls)
        missing = await self._send(calls, commands)
        if missing:
            log.info("redis %s: %d scripts were not loaded, sending their source", self._name, len(missing))
            await self._send(missing, [call.command(with_source=True) for call in missing])

    async def _send(self, calls: list[_Call], commands: list[tuple[Any, ...]]) -> list[_Call]:
        """One pipeline; settles every call except those Redis refused with NOSCRIPT (returned)."""
        try:
            async with asyncio.timeout(self._io_timeout):
                replies = await self._exchange(commands)
        except Exception as exc:
            if not isinstance(exc, (RedisError, OSError, TimeoutError)):
                log.exception("redis %s: a pipeline failed", self._name)
            error = self._error(str(exc) or type(exc).__name__)
            for call in calls:
                call.settle(None, error)
            self._fail_queue(error)
            return []
        except asyncio.CancelledError:
            for call in calls:
                call.settle(None, self._error("the connection is closed"))
            raise
        missing = []
        for call, command, reply in zip(calls, commands, replies, strict=True):
            if isinstance(reply, NoScriptError) and command[0] == "EVALSHA":
                missing.append(call)
            elif isinstance(reply, Exception):
                call.settle(None, self._error(str(reply)))
            else:
                call.settle(reply)
        return missing

    def _fail_queue(self, error: EngineError) -> None:
        queued, self._queue = self._queue, []
        for call in queued:
            call.settle(None, error)

    def _error(self, reason: str) -> EngineError:
        return EngineError(f"redis {self._name}: {reason}")


def _commands(calls: list[_Call]) -> list[tuple[Any, ...]]:
    """The wire commands; a channel with several calls loads each of its scripts with its first call."""
    per_channel = Counter(call.channel for call in calls)
    loaded: set[tuple[str, str]] = set()
    commands = []
    for call in calls:
        with_source = False
        if call.script is not None and per_channel[call.channel] > 1:
            lane = (call.channel, call.script.sha)
            with_source = lane not in loaded
            loaded.add(lane)
        commands.append(call.command(with_source))
    return commands
