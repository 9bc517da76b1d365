"""The node's side of the cluster: node discovery, commands that must reach every node, surveys.

Every node announces itself (counts of clients, users, channels) every few seconds; a node not heard
from for a few periods is dropped from `nodes`. Commands aimed at users (disconnect, unsubscribe,
subscribe, refresh) run locally and are broadcast to the other nodes, because a user's connections may
live anywhere. A survey asks every known node and gathers the answers until all replied or a timeout.
See https://centrifugal.dev/docs/server/engines (the control channel of a multi-node setup).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from rotary.engines.base import Controller, EngineError
from rotary.engines.outage import report_engine_error
from rotary.node.metrics import Metrics
from rotary.protocol._pb import control_pb2 as cpb

log = logging.getLogger("rotary.node.control")

INFO_INTERVAL = 3.0
NODE_TTL = 3 * INFO_INTERVAL + 1

CommandHandler = Callable[[cpb.Command], Coroutine[Any, Any, None]]
SurveyHandler = Callable[[bytes], Awaitable[bytes]]


@dataclass(slots=True)
class KnownNode:
    info: cpb.NodeInfo
    seen_at: float


class ControlPlane:
    """Runs the control channel of one node."""

    def __init__(
        self,
        node_id: str,
        controller: Controller,
        local_info: Callable[[], cpb.NodeInfo],
        on_command: CommandHandler,
        surveys: dict[str, SurveyHandler],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        info_interval: float = INFO_INTERVAL,
        metrics: Metrics | None = None,
    ) -> None:
        self.node_id = node_id
        self._controller = controller
        self._local_info = local_info
        self._on_command = on_command
        self._surveys = surveys
        self._spawn = spawn
        self._interval = info_interval
        self.nodes: dict[str, KnownNode] = {}
        self._pending: dict[int, tuple[asyncio.Future[None], list[bytes], int]] = {}
        self._ids = itertools.count(1)
        self._ticker: asyncio.Task[None] | None = None
        self._metrics = metrics
        """Counts control messages sent and received (``node_messages_*_count{type="control"}``)."""

    async def start(self) -> None:
        await self._controller.start(self._receive)
        await self._announce()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        await self._controller.close()

    def live_nodes(self) -> list[cpb.NodeInfo]:
        """This node's fresh stats, then every other node heard from recently."""
        now = time.monotonic()
        for uid in [uid for uid, known in self.nodes.items() if now - known.seen_at > NODE_TTL]:
            del self.nodes[uid]
        others = [known.info for uid, known in self.nodes.items() if uid != self.node_id]
        return [self._local_info(), *others]

    async def broadcast(self, command: cpb.Command) -> None:
        command.from_node = self.node_id
        await self._publish(command)

    async def send(self, command: cpb.Command, to_node: str) -> None:
        """Sends a command to one node only (the owner of an emulated session)."""
        command.from_node = self.node_id
        await self._publish(command, to_node)

    async def _publish(self, command: cpb.Command, to_node: str = "") -> None:
        if self._metrics is not None:
            self._metrics.broker_sent.add(("control",))
        await self._controller.publish_control(command.SerializeToString(), to_node=to_node)

    def knows(self, node_id: str) -> bool:
        """Whether ``node_id`` is this node or one heard from recently."""
        return node_id == self.node_id or any(info.uid == node_id for info in self.live_nodes())

    async def survey(self, op: str, data: bytes, timeout: float = 2.0) -> list[bytes]:
        """Answers of every other live node to ``op`` (the caller adds its own)."""
        expected = len(self.live_nodes()) - 1
        if expected <= 0:
            return []
        survey_id = next(self._ids)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        answers: list[bytes] = []
        self._pending[survey_id] = (done, answers, expected)
        request = cpb.Command(survey_request=cpb.SurveyRequest(id=survey_id, op=op, data=data))
        try:
            await self.broadcast(request)
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            log.warning("survey %s: %d of %d nodes answered in time", op, len(answers), expected)
        finally:
            self._pending.pop(survey_id, None)
        return answers

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._announce()
            except EngineError as error:  # the broker is away: a rate-limited warning, not a bug
                report_engine_error("node info announcement", error)
            except Exception:
                log.exception("could not announce node info")

    async def _announce(self) -> None:
        await self.broadcast(cpb.Command(node_info=self._local_info()))

    def _receive(self, data: bytes) -> None:
        if self._metrics is not None:
            self._metrics.broker_received.add(("control",))
        command = cpb.Command()
        try:
            command.ParseFromString(data)
        except DecodeError:
            log.warning("undecodable control message of %d bytes", len(data))
            return
        if command.HasField("node_info"):
            self.nodes[command.node_info.uid] = KnownNode(command.node_info, time.monotonic())
            return
        if command.from_node == self.node_id:
            return
        if command.HasField("survey_request"):
            self._spawn(self._answer(command.from_node, command.survey_request))
        elif command.HasField("survey_reply"):
            self._collect(command.survey_reply)
        else:
            self._spawn(self._on_command(command))

    async def _answer(self, asker: str, request: cpb.SurveyRequest) -> None:
        handler = self._surveys.get(request.op)
        if handler is None:
            return
        reply = cpb.Command(
            from_node=self.node_id,
            survey_reply=cpb.SurveyReply(id=request.id, data=await handler(request.data)),
        )
        await self._publish(reply, asker)

    def _collect(self, reply: cpb.SurveyReply) -> None:
        pending = self._pending.get(reply.id)
        if pending is None:
            return
        done, answers, expected = pending
        answers.append(reply.data)
        if len(answers) >= expected and not done.done():
            done.set_result(None)
