"""One ``/metrics`` scrape for every worker of ``rotary --workers N``.

The workers share one port, so a scrape lands on whichever worker the kernel picks; alone it would
show that worker's numbers only, and Prometheus would see them jump from scrape to scrape. The
supervisor makes a private directory (mode 0700) for the run and names it to its workers in
``ROTARY_WORKER_METRICS_DIR``; each worker answers on a Unix socket there with a snapshot of its numbers,
and the worker that serves a scrape adds up its own and every other worker's. Counters and
histograms add up; the node gauges add up as a dashboard's ``sum()`` over Centrifugo nodes would;
process CPU, memory and file descriptors add up, the start time is the earliest. A worker that is
being restarted is left out of the scrapes it misses, as a Centrifugo node that is down would be.
See https://centrifugal.dev/docs/server/observability#prometheus-metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from rotary.node.metrics import Metrics
from rotary.node.node import Node, NodeInfo
from rotary.server.config.env import WORKER_METRICS_VARIABLE
from rotary.server.metrics.text import Family

log = logging.getLogger("rotary.server.metrics")

ANSWER_TIMEOUT = 2.0
"""Seconds a scrape waits for another worker's numbers before leaving that worker out."""

NODE_GAUGES = ("num_clients", "num_users", "num_channels", "num_subs")

PROCESS_EARLIEST = "process_start_time_seconds"
PROCESS_OWN = "process_max_fds"
"""Process samples that do not add up: the group started with its first worker; the limit of one
worker's descriptors is every worker's."""


@dataclasses.dataclass
class Group:
    """What one scrape shows: every worker's numbers added up."""

    metrics: Metrics
    info: NodeInfo
    process: list[Family]


class WorkerGroup:
    """This worker's socket in the run's directory, and the adding up of the others' answers."""

    def __init__(
        self, directory: Path, node: Node, metrics: Metrics, process: Callable[[], Iterable[Family]]
    ) -> None:
        self.directory = directory
        self.path = directory / f"{os.getpid()}.sock"
        self._node = node
        self._metrics = metrics
        self._process = process
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by an earlier process with this pid
        self._server = await asyncio.start_unix_server(self._answer, path=str(self.path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def own(self, process: Iterable[Family]) -> dict[str, Any]:
        info = self._node.info()
        return {
            "metrics": self._metrics.snapshot(),
            "info": {name: getattr(info, name) for name in NODE_GAUGES},
            "process": {f.name + s[0]: s[2] for f in process for s in f.samples if not s[1]},
        }

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(orjson.dumps(self.own(self._process())))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def gather(self, process: list[Family]) -> Group:
        """This worker's numbers with every other live worker's added."""
        answers = await asyncio.gather(*(self._ask(path) for path in self._others()))
        combined = Metrics(self._metrics.clock)
        combined.absorb(self._metrics.snapshot())
        info = self._node.info()
        totals = {name: getattr(info, name) for name in NODE_GAUGES}
        for answer in answers:
            if answer is None:
                continue
            combined.absorb(answer["metrics"])
            for name in NODE_GAUGES:
                totals[name] += answer["info"][name]
            _add_process(process, answer["process"])
        return Group(combined, dataclasses.replace(info, **totals), process)

    def _others(self) -> list[Path]:
        return [p for p in self.directory.glob("*.sock") if p != self.path]

    async def _ask(self, path: Path) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(str(path))
                try:
                    data = await reader.read()
                finally:
                    writer.close()
            answer: dict[str, Any] = orjson.loads(data)
        except ConnectionRefusedError:  # the socket of a worker that died: nobody will answer
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        except (OSError, TimeoutError, orjson.JSONDecodeError) as exc:
            log.warning("metrics of the worker at %s left out of this scrape: %r", path, exc)
            return None
        return answer


def _add_process(families: list[Family], other: dict[str, float]) -> None:
    for family in families:
        for i, (suffix, labels, value) in enumerate(family.samples):
            theirs = other.get(family.name + suffix)
            if labels or theirs is None or family.name == PROCESS_OWN:
                continue
            added = min(value, theirs) if family.name == PROCESS_EARLIEST else value + theirs
            family.samples[i] = (suffix, labels, added)


def worker_group(node: Node, metrics: Metrics, process: Callable[[], Iterable[Family]]) -> WorkerGroup | None:
    """This worker's link to the others, when it is one of ``--workers``."""
    directory = os.environ.get(WORKER_METRICS_VARIABLE)
    return WorkerGroup(Path(directory), node, metrics, process) if directory else None
