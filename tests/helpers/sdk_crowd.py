"""A crowd of centrifuge-python clients in a process of its own, driven over stdin by a test.

The reconnect storm needs thousands of the official SDK's clients doing their own reconnecting
and backoff. One process holds a couple of thousand at most while staying responsive (each
client is a websockets connection, three tasks and the SDK's objects, about 60 KiB of RSS), so
a large crowd is split over several of these processes, each reporting what its clients got.

    python -m helpers.sdk_crowd SETTINGS

SETTINGS is a JSON object: ``url``, ``channel``, ``first`` and ``count`` (the clients are users
``user<first>`` to ``user<first + count - 1>``), ``client_options`` (keyword arguments of
``centrifuge.Client``) and ``max_resubscribe_delay``. The process reads one command per line and
answers each with one JSON line once it is done:

    join            connects every client and subscribes it to the channel with recovery
    mark LAST       what happens from now on is the storm; LAST is the seq of the last publication
    progress        how many clients are done (subscribed again with the last publication, or
                    told that they may have missed some) and connected again since the mark, and
                    the process's CPU seconds since the mark
    report RESTARTED ACCEPTED
                    the figures since the mark (times relative to RESTARTED, a time.monotonic()
                    of the test's process: the same clock here) and the clients that did not
                    get every ACCEPTED seq (a JSON list) once and in order, or were not
                    recovered
    quit            disconnects every client and exits

What a client records is kept small on purpose: the subscription's events with the SDK's own
context objects (what ``assert_no_silent_loss`` reads), and the client's events since the mark as
short strings. Keeping every event's context (an error's exception holds its traceback, and with
it the failed connection) is what made the first storm crowds grow by megabytes per client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import centrifuge
from centrifuge import SubscriptionState

from helpers.cluster import token
from helpers.traffic import assert_no_silent_loss, insufficient_state, recovered_false

CONNECT_BATCH = 50
"""Clients of one process connecting at once while the crowd is built (before the storm)."""
READY_TIMEOUT = 60.0
"""An upper bound for one client's connect or subscribe while the crowd is built: a node busy with
several crowds' batches reads Redis late, and the SDK retries a subscribe that failed meanwhile."""


@dataclass(eq=False)
class Member:
    """One client of the crowd and what it recorded."""

    index: int
    sub_events: list[tuple[str, Any]] = field(default_factory=list)
    """The subscription's events (not join and leave), with the SDK's contexts."""
    client_log: list[tuple[float, str, str]] = field(default_factory=list)
    """The client's events since the mark: (time, handler, what)."""
    marked: bool = False
    mark: int = 0
    """How many subscription events came before the mark."""
    last: int | None = None
    has_last: bool = False
    connected_at: float | None = None
    done_at: float | None = None
    client: centrifuge.Client | None = None
    sub: centrifuge.Subscription | None = None

    def since_mark(self) -> list[tuple[str, Any]]:
        return self.sub_events[self.mark :]


class ClientEvents(centrifuge.ClientEventHandler):  # type: ignore[misc]  # the SDK is untyped
    """Notes the client's connection events as short strings once the storm is marked."""

    def __init__(self, member: Member) -> None:
        self._member = member

    def _note(self, name: str, what: str) -> None:
        if self._member.marked:
            self._member.client_log.append((time.monotonic(), name, what))

    async def on_connecting(self, ctx: centrifuge.ConnectingContext) -> None:
        self._note("on_connecting", f"{ctx.code} {ctx.reason}")

    async def on_connected(self, ctx: centrifuge.ConnectedContext) -> None:
        member = self._member
        if member.marked and member.connected_at is None:
            member.connected_at = time.monotonic()
        self._note("on_connected", "")

    async def on_disconnected(self, ctx: centrifuge.DisconnectedContext) -> None:
        self._note("on_disconnected", f"{ctx.code} {ctx.reason}")

    async def on_error(self, ctx: centrifuge.ErrorContext) -> None:
        self._note("on_error", f"{type(ctx.error).__name__}: {str(ctx.error)[:60]}")


class SubscriptionEvents(centrifuge.SubscriptionEventHandler):  # type: ignore[misc]  # the SDK is untyped
    """Keeps the subscription's events and notes when the client is done with the storm."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self.joins_and_leaves = 0

    async def on_subscribing(self, ctx: centrifuge.SubscribingContext) -> None:
        self._member.sub_events.append(("on_subscribing", ctx))

    async def on_subscribed(self, ctx: centrifuge.SubscribedContext) -> None:
        self._member.sub_events.append(("on_subscribed", ctx))

    async def on_unsubscribed(self, ctx: centrifuge.UnsubscribedContext) -> None:
        self._member.sub_events.append(("on_unsubscribed", ctx))

    async def on_error(self, ctx: centrifuge.SubscriptionErrorContext) -> None:
        self._member.sub_events.append(
            ("on_error", _ErrorNote(type(ctx.error).__name__, str(ctx.error)[:60]))
        )

    async def on_publication(self, ctx: centrifuge.PublicationContext) -> None:
        member = self._member
        member.sub_events.append(("on_publication", ctx))
        if member.marked and ctx.pub.data == {"seq": member.last}:
            member.has_last = True

    async def on_join(self, ctx: centrifuge.JoinContext) -> None:
        self.joins_and_leaves += 1

    async def on_leave(self, ctx: centrifuge.LeaveContext) -> None:
        self.joins_and_leaves += 1


@dataclass(frozen=True)
class _ErrorNote:
    """A subscription error, without the exception (and the traceback it holds)."""

    kind: str
    message: str


def told(seen: list[tuple[str, Any]]) -> bool:
    """Whether a subscription was told that it may have missed publications."""
    return any(recovered_false(name, ctx) or insufficient_state(name, ctx) for name, ctx in seen)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class SdkCrowd:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._url: str = settings["url"]
        self._channel: str = settings["channel"]
        self._first: int = settings["first"]
        self._options: dict[str, Any] = settings.get("client_options", {})
        self._resubscribe: float = settings.get("max_resubscribe_delay", 0.5)
        self.members = [Member(self._first + offset) for offset in range(settings["count"])]
        self._sub_handlers: list[SubscriptionEvents] = []
        self._waiting: list[Member] = []
        self._cpu_at_mark = 0.0
        self._built_seconds = 0.0
        self._rss_empty = rss_mib()

    async def join(self) -> dict[str, Any]:
        began = time.monotonic()
        for start in range(0, len(self.members), CONNECT_BATCH):
            await asyncio.gather(
                *(self._join(member) for member in self.members[start : start + CONNECT_BATCH])
            )
        self._built_seconds = time.monotonic() - began
        return {
            "seconds": round(self._built_seconds, 1),
            "rss_mib": round(rss_mib(), 1),
            "rss_mib_empty": round(self._rss_empty, 1),
        }

    async def _join(self, member: Member) -> None:
        client = centrifuge.Client(
            self._url,
            events=ClientEvents(member),
            token=token(f"user{member.index}"),
            proxy=None,
            **self._options,
        )
        member.client = client
        await client.connect()
        await client.ready(timeout=READY_TIMEOUT)
        handler = SubscriptionEvents(member)
        self._sub_handlers.append(handler)
        sub = client.new_subscription(self._channel, events=handler, max_resubscribe_delay=self._resubscribe)
        member.sub = sub
        await sub.subscribe()
        await sub.ready(timeout=READY_TIMEOUT)

    def mark(self, last: int) -> dict[str, Any]:
        for member in self.members:
            member.marked = True
            member.mark = len(member.sub_events)
            member.last = last
        self._waiting = list(self.members)
        self._cpu_at_mark = cpu_seconds()
        return {"rss_mib": round(rss_mib(), 1), "cpu_s": round(self._cpu_at_mark, 1)}

    def progress(self) -> dict[str, Any]:
        now = time.monotonic()
        waiting = []
        for member in self._waiting:
            assert member.sub is not None
            if member.sub.state is SubscriptionState.SUBSCRIBED and (
                member.has_last or told(member.since_mark())
            ):
                member.done_at = now
            else:
                waiting.append(member)
        self._waiting = waiting
        return {
            "done": len(self.members) - len(waiting),
            "connected": sum(1 for member in self.members if member.connected_at is not None),
            "cpu_s": round(cpu_seconds() - self._cpu_at_mark, 2),
        }

    def report(self, restarted: float, accepted: list[int]) -> dict[str, Any]:
        failures: collections.Counter[str] = collections.Counter()
        drops: collections.Counter[str] = collections.Counter()
        for member in self.members:
            for _, name, what in member.client_log:
                if name == "on_error":
                    failures[what] += 1
                elif name in ("on_connecting", "on_disconnected"):
                    drops[f"{name} {what}"] += 1
        return {
            "clients": len(self.members),
            "connected_s": [
                round(member.connected_at - restarted, 2)
                for member in self.members
                if member.connected_at is not None
            ],
            "done_s": [
                round(member.done_at - restarted, 2) for member in self.members if member.done_at is not None
            ],
            "failed_connect_attempts_by_error": dict(failures),
            "connection_ends_by_code": dict(drops),
            **checked(
                [(f"user{member.index}", member.sub_events, member.since_mark()) for member in self.members],
                accepted,
            ),
            "joins_and_leaves": sum(handler.joins_and_leaves for handler in self._sub_handlers),
            "stuck": self._stuck(),
            "rss_mib": round(rss_mib(), 1),
            "rss_mib_empty": round(self._rss_empty, 1),
            "built_s": round(self._built_seconds, 1),
            "cpu_s_build": round(self._cpu_at_mark, 1),
            "cpu_s_storm": round(cpu_seconds() - self._cpu_at_mark, 1),
        }

    def _stuck(self) -> dict[str, int]:
        return dict(
            collections.Counter(
                stuck_as(
                    f"{member.client.state.value if member.client else '-'}/"
                    f"{member.sub.state.value if member.sub else '-'}",
                    member.sub_events,
                )
                for member in self._waiting
            )
        )

    async def close(self) -> None:
        for start in range(0, len(self.members), CONNECT_BATCH * 4):
            batch = self.members[start : start + CONNECT_BATCH * 4]
            await asyncio.gather(
                *(member.client.disconnect() for member in batch if member.client is not None)
            )
        # disconnect() leaves the WebSocket closing handshake to a background task.
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=2)


Seen = list[tuple[str, Any]]
"""A subscription's events: (name of the SDK handler, its context)."""


def checked(clients: list[tuple[str, Seen, Seen]], accepted: list[int]) -> dict[str, Any]:
    """The loss checks of a crowd's ``clients`` (name, every event of its subscription, the events
    since the mark): how many were told they may have missed publications, how many publications
    are missing, and which clients did not hold (see ``why_not_held``)."""
    not_held = []
    for name, seen, since_mark in clients:
        problem = why_not_held(seen, since_mark, accepted)
        if problem:
            not_held.append(f"{name}: {problem}")
    return {
        "told": sum(1 for _, seen, _ in clients if told(seen)),
        "missing": sum(len(set(accepted) - _received(seen)) for _, seen, _ in clients),
        "not_held": len(not_held),
        "not_held_first": not_held[:5],
    }


def why_not_held(seen: list[tuple[str, Any]], since_mark: list[tuple[str, Any]], accepted: list[int]) -> str:
    """Why a client whose subscription saw ``seen`` (``since_mark`` of them in the storm) does not
    hold: a publication lost, twice or out of order, or a resubscription that did not recover;
    empty when it holds."""
    try:
        assert_no_silent_loss(seen, accepted, set())
    except AssertionError as exc:
        return str(exc)[:300]
    resubscribed = [ctx for name, ctx in since_mark if name == "on_subscribed" and ctx.was_recovering]
    if not resubscribed:
        return "never resubscribed with recovery"
    if not all(ctx.recovered for ctx in resubscribed):
        return f"resubscribed without recovery: {resubscribed}"[:300]
    return ""


def stuck_as(states: str, seen: list[tuple[str, Any]]) -> str:
    """How a client still waiting at the end is counted: its client and subscription ``states``
    (``client/subscription``), last event, how the last subscribe went, newest seq received, told
    or not."""
    return (
        f"{states}/{seen[-1][0] if seen else '-'}/{_last_subscribe(seen)}/seq {_newest_seq(seen)}/"
        f"{'told' if told(seen) else 'not told'}"
    )


def _last_subscribe(seen: list[tuple[str, Any]]) -> str:
    subscribed = [ctx for name, ctx in seen if name == "on_subscribed"]
    if not subscribed:
        return "never subscribed"
    return f"was_recovering={subscribed[-1].was_recovering} recovered={subscribed[-1].recovered}"


def _received(seen: list[tuple[str, Any]]) -> set[int]:
    return {ctx.pub.data["seq"] for name, ctx in seen if name == "on_publication"}


def _newest_seq(seen: list[tuple[str, Any]]) -> Any:
    return max((ctx.pub.data["seq"] for name, ctx in seen if name == "on_publication"), default="-")


async def main(settings: dict[str, Any]) -> None:
    crowd = SdkCrowd(settings)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split(maxsplit=2)
            if not line or line[0] == "quit":
                break
            answer: dict[str, Any] = {}
            if line[0] == "join":
                answer = await crowd.join()
            elif line[0] == "mark":
                answer = crowd.mark(int(line[1]))
            elif line[0] == "progress":
                answer = crowd.progress()
            elif line[0] == "report":
                answer = crowd.report(float(line[1]), json.loads(line[2]))
            print(json.dumps({"ok": True, **answer}), flush=True)
    finally:
        await crowd.close()


class SdkCrowds:
    """The test's side: processes of this module sharing a crowd of ``clients`` between them."""

    def __init__(self, processes: list[asyncio.subprocess.Process]) -> None:
        self._processes = processes

    @classmethod
    async def start(
        cls, url: str, channel: str, clients: int, per_process: int, nice: int = 0, **settings: Any
    ) -> SdkCrowds:
        """``nice`` lowers the crowd's CPU priority below the server's: the crowd stands in for
        clients on machines of their own, and on a small machine it otherwise takes most of the
        CPU the node needs (the SDK spends about four times the node's CPU per failed attempt)."""
        processes = []
        for first in range(0, clients, per_process):
            count = min(per_process, clients - first)
            arguments = {"url": url, "channel": channel, "first": first, "count": count, **settings}
            processes.append(
                await asyncio.create_subprocess_exec(
                    *(["nice", "-n", str(nice)] if nice else []),  # nice execs the crowd: same pid
                    *cls.command(arguments),
                    cwd=Path(__file__).resolve().parents[1],
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=2**26,  # a report of a few thousand clients is one long line
                )
            )
        return cls(processes)

    @staticmethod
    def command(arguments: dict[str, Any]) -> list[str]:
        """The command line of one crowd process with ``arguments`` (see the module docstring)."""
        return [sys.executable, "-m", "helpers.sdk_crowd", json.dumps(arguments)]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    async def ask(self, command: str) -> list[dict[str, Any]]:
        """Sends ``command`` to every process at once; their answers once all have done it."""
        return list(await asyncio.gather(*(self._ask(process, command) for process in self._processes)))

    @staticmethod
    async def _ask(process: asyncio.subprocess.Process, command: str) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(f"{command}\n".encode())
        await process.stdin.drain()
        line = await process.stdout.readline()
        assert line, f"a crowd process ended at {command.split()[0]!r} (its traceback is above)"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self) -> None:
        """Lets each process disconnect its clients and exit; kills the ones that do not."""
        for process in self._processes:
            if process.returncode is None and process.stdin is not None:
                with contextlib.suppress(ConnectionError):
                    process.stdin.write(b"quit\n")
                    await process.stdin.drain()
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(process.wait() for process in self._processes))
        except TimeoutError:
            for process in self._processes:
                if process.returncode is None:
                    process.kill()
                    await process.wait()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
