"""The Node: one per process, owning the hub, the broker, the presence manager and the hooks.

It is the embedding API (publish, history, presence, disconnect, server-side subscribe, ...) and the
broker's event handler. An embedding application writes ``node = Node(hooks=MyHooks())`` and gets the
memory engine; the server builds it from a Centrifugo config. See ARCHITECTURE.md, "Node and Hub".
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rotary._version import __version__
from rotary.engines.base import (
    Broker,
    Controller,
    EngineError,
    HistoryQuery,
    HistoryResult,
    PresenceManager,
    PresenceStats,
    PublishOptions,
    PublishResult,
    StreamPosition,
)
from rotary.engines.outage import report_engine_error
from rotary.node import cluster, upkeep
from rotary.node.client import Client
from rotary.node.control import ControlPlane
from rotary.node.deadlines import Deadlines
from rotary.node.hooks import Hooks, SubscribeOptions
from rotary.node.hub import Hub
from rotary.node.metrics import Metrics
from rotary.protocol import codes, pb
from rotary.session.session import SessionLimits

log = logging.getLogger("rotary.node")

VERSION = __version__


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Limits and timings the node applies to every connection (Centrifugo's `client` section)."""

    name: str = ""
    version: str = VERSION
    channel_limit: int = 128
    user_connection_limit: int = 0
    queue_max_size: int = 1048576
    history_max_publication_limit: int = 300
    recovery_max_publication_limit: int = 300
    stale_close_delay: float = 10.0
    ping_interval: float = 25.0
    pong_timeout: float = 8.0
    expired_close_delay: float = 25.0
    expired_sub_close_delay: float = 25.0
    connect_include_server_time: bool = False
    presence_update_interval: float = 27.0
    position_check_interval: float = 40.0
    shutdown_batch_size: int = 500
    unidirectional_code_to_disconnect: Mapping[int, codes.Disconnect] = field(default_factory=dict)
    """Connect error code to the disconnect a unidirectional client gets instead (after the defaults)."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's identity and counts, as Centrifugo's ``info`` API reports them."""

    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    num_subs: int
    uptime: int


@dataclass(slots=True)
class _ChannelTurn:
    """One channel's turn to change its engine subscription, kept while anyone holds or awaits it.

    Dropped only when nobody does: a lock forgotten while a task still waits on it would let the
    next comer take a new one and run beside that task (asyncio's lock reads as unlocked between
    its release and the woken waiter's step)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Node:
    def __init__(
        self,
        config: NodeConfig | None = None,
        *,
        hooks: Hooks | None = None,
        broker: Broker | None = None,
        presence_manager: PresenceManager | None = None,
        controller: Controller | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        from rotary.engines.memory import MemoryBroker, MemoryPresenceManager
        from rotary.node.default_hooks import AllowAllHooks

        self.config = config or NodeConfig()
        self.id = controller.node_id if controller is not None else str(uuid.uuid4())
        self.name = self.config.name or self.id
        self.hooks: Hooks = hooks or AllowAllHooks()
        self.broker: Broker = broker or MemoryBroker()
        self.presence_manager: PresenceManager = presence_manager or MemoryPresenceManager()
        self.metrics = metrics
        """Prometheus counts (``rotary.node.metrics``); None counts nothing."""
        self.hub = Hub(self.config.queue_max_size, self._call_soon, metrics)
        self._connections: set[Client] = set()
        """Every open connection, including those that have not connected yet (not in the hub)."""
        self.deadlines = Deadlines()
        """Every connection's next deadline, on shared loop timers (node/deadlines.py)."""
        self._session_limits: tuple[NodeConfig | None, SessionLimits, SessionLimits] = (
            None,
            SessionLimits(),
            SessionLimits(),
        )
        """The config the limits of bidirectional and unidirectional connections were made from."""
        self._started_at = time.time()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._channel_turns: dict[str, _ChannelTurn] = {}
        self._broker_channels: set[str] = set()
        self.closing = False
        self.emulation_sessions: dict[str, Callable[[bytes], None]] = {}
        """The inbound path of each emulated (HTTP-streaming, SSE) connection here, by session id."""
        self.control: ControlPlane | None = None
        self._upkeep: list[asyncio.Task[None]] = []
        if controller is not None:
            self.control = ControlPlane(
                self.id,
                controller,
                lambda: cluster.info_message(self.info()),
                lambda command: cluster.apply(self, command),
                cluster.surveys(self),
                self.spawn,
                metrics=metrics,
            )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connects the engines and starts the node's upkeep (presence refresh, position checks)."""
        await self.broker.start(self)
        if self.control is not None:
            await self.control.start()
        loop = asyncio.get_running_loop()
        if self.config.presence_update_interval > 0:
            interval = self.config.presence_update_interval
            self._upkeep.append(loop.create_task(upkeep.refresh_presence(self, interval)))
        if self.config.position_check_interval > 0:
            check = upkeep.PositionCheck(self)
            self._upkeep.append(loop.create_task(check.run(self.config.position_check_interval)))

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Disconnects every connection with 3001 in bounded batches, then closes the engines.

        Connections that have not sent `connect` yet are closed too: nothing else would end them
        before the stale timeout, and the server waits for every handler before it exits.
        """
        self.closing = True
        for task in self._upkeep:
            task.cancel()
        clients = list(self._connections)
        batch = self.config.shutdown_batch_size
        for i in range(0, len(clients), batch):
            for client in clients[i : i + batch]:
                client.close(codes.DISCONNECT_SHUTDOWN)
            await asyncio.sleep(0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self.control is not None:
            await self.control.close()
        await self.broker.close()
        await self.presence_manager.close()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs background work whose failure must be logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro, name=getattr(coro, "__qualname__", None))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, EngineError):
            report_engine_error(f"background task {task.get_name()}", error)
        elif error is not None:
            log.error("background task failed", exc_info=error)

    def _call_soon(self, callback: Any) -> None:
        asyncio.get_running_loop().call_soon(callback)

    def session_limits(self, unidirectional: bool) -> SessionLimits:
        """The timing of a new connection, made once per config (frozen) and kind of transport."""
        made_from, bidirectional, uni = self._session_limits
        if made_from is not self.config:
            bidirectional, uni = self._make_session_limits(False), self._make_session_limits(True)
            self._session_limits = (self.config, bidirectional, uni)
        return uni if unidirectional else bidirectional

    def _make_session_limits(self, unidirectional: bool) -> SessionLimits:
        c = self.config
        return SessionLimits(
            stale_close_delay=c.stale_close_delay,
            ping_interval=c.ping_interval if c.ping_interval > 0 else 0,
            pong_timeout=c.pong_timeout,
            expired_close_delay=c.expired_close_delay,
            expired_sub_close_delay=c.expired_sub_close_delay,
            presence_update_interval=c.presence_update_interval,
            unidirectional=unidirectional,
        )

    # -- broker events (synchronous: fan-out never awaits) -------------------------------------

    def handle_publication(
        self,
        channel: str,
        pub: pb.Publication,
        position: StreamPosition,
        delta: bool,
        prev: pb.Publication | None,
    ) -> None:
        if pub.offset == 1 and position.epoch:
            # As centrifuge does: the first publication of a stream names its epoch, so a client
            # learns it (in history too with the memory engine, which sets it when it stores it).
            pub.epoch = position.epoch
        if self.metrics is not None:
            self.metrics.broker_received.add(("publication",))
        self.hub.broadcast_publication(channel, pub, pub.offset, prev if delta else None, position.epoch)

    def handle_join(self, channel: str, info: pb.ClientInfo) -> None:
        if self.metrics is not None:
            self.metrics.broker_received.add(("join",))
        self.hub.broadcast_join_leave(channel, info, join=True)

    def handle_leave(self, channel: str, info: pb.ClientInfo) -> None:
        if self.metrics is not None:
            self.metrics.broker_received.add(("leave",))
        self.hub.broadcast_join_leave(channel, info, join=False)

    def handle_resubscribed(self, positions: Mapping[str, StreamPosition]) -> None:
        """Ends the positioned subscriptions that missed publications while the broker was cut off,
        as a gap in the offsets would: `unsubscribe` 2500 so the client recovers, or 3010 for a
        server-side subscription. Without this they would learn it only from the next publication."""
        upkeep.report_positions(self, positions)

    def handle_interrupted(self, channels: Sequence[str]) -> None:
        """Ends the subscriptions to ``channels`` that no position can vouch for: `unsubscribe`
        2500, or 3010 for a server-side subscription. Centrifugo's NATS broker drops publications
        silently while NATS is away; here each subscriber learns it may have missed some and
        resubscribes (its SDK retries until the broker is back), which is its cue to reload state."""
        upkeep.report_interruption(self, channels)

    # -- engine subscription of channels -------------------------------------------------------

    async def sync_broker_subscription(self, channel: str) -> None:
        """Makes the broker's subscription to ``channel`` match whether local subscribers exist.

        Serialized per channel, so a subscribe racing the unsubscribe of the previous last subscriber
        always ends subscribed; returning means the PUB/SUB subscription is live when wanted.
        """
        turn = self._channel_turns.get(channel)
        if turn is None:
            if self.hub.has_subscribers(channel) == (channel in self._broker_channels):
                # Nobody holds or awaits this channel's turn, so taking it would not wait, and the
                # broker already matches: what the turn would find, without a lock made for it
                # (every subscribe to a channel this node already has comes here).
                return
            turn = self._channel_turns[channel] = _ChannelTurn()
        turn.users += 1
        try:
            async with turn.lock:
                want = self.hub.has_subscribers(channel)
                if want and channel not in self._broker_channels:
                    self._count("broker_subscribe")
                    await self.broker.subscribe([channel])
                    self._broker_channels.add(channel)
                elif not want and channel in self._broker_channels:
                    self._count("broker_unsubscribe")
                    await self.broker.unsubscribe([channel])
                    self._broker_channels.discard(channel)
        finally:
            turn.users -= 1
            if not turn.users:
                del self._channel_turns[channel]

    # -- connection bookkeeping ----------------------------------------------------------------

    def client_opened(self, client: Client) -> None:
        """Counts a connection from the moment its transport is open, so shutdown also closes one
        that has not connected yet."""
        self._connections.add(client)

    def client_closed(self, client: Client, disconnect: codes.Disconnect) -> None:
        """Forgets a closed connection; its subscriptions were released by its close. A connection
        that had connected is reported to `client_disconnected`."""
        self._connections.discard(client)
        connected = client.id in self.hub.clients
        self.hub.remove_client(client)
        if connected:
            self.client_disconnected(client, disconnect)

    async def client_connected(self, client: Client) -> None:
        """Called once a connection is connected and its connect reply (or push) is written, before
        its next command runs. Nothing to do here; the public ``rotary.Node`` runs ``on_connect``."""

    def client_disconnected(self, client: Client, disconnect: codes.Disconnect) -> None:
        """Called once a connected connection closed, synchronously from its close. Nothing to do
        here; the public ``rotary.Node`` runs ``on_disconnect`` in the background."""

    async def emulate(self, node_id: str, session: str, data: bytes) -> bool:
        """Hands a client-to-server message of an emulated connection to the node owning its session.

        Any node may receive it (no sticky sessions), as in Centrifugo; False when ``node_id`` is not
        a live node. A session unknown to its node is dropped there: its stream has ended already.
        """
        if node_id == self.id:
            self.deliver_emulation(session, data)
            return True
        if self.control is None or not self.control.knows(node_id):
            return False
        await self.control.send(cluster.emulation_command(session, data), node_id)
        return True

    def deliver_emulation(self, session: str, data: bytes) -> None:
        deliver = self.emulation_sessions.get(session)
        if deliver is None:
            log.debug("emulation request for unknown session %s", session)
            return
        deliver(data)

    # -- the embedding API ---------------------------------------------------------------------

    async def publish(
        self, channel: str, data: bytes, options: PublishOptions | None = None
    ) -> PublishResult:
        if self.metrics is None:
            return await self.broker.publish(channel, data, options or PublishOptions())
        self.metrics.broker_sent.add(("publication",))
        result = await self.broker.publish(channel, data, options or PublishOptions())
        if result.suppressed:
            self.metrics.broker_suppressed.add((result.suppress_reason,))
        return result

    # The reads are named apart from the public API's ``history``/``presence`` (rotary.Node, a
    # subclass): commands and the server API call these, whichever Node they run on.

    async def read_history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        self._count("history")
        return await self.broker.history(channel, query)

    async def remove_history(self, channel: str) -> None:
        """Drops the channel's kept publications; its stream position stays."""
        self._count("history_remove")
        await self.broker.remove_history(channel)

    async def read_presence(self, channel: str) -> dict[str, pb.ClientInfo]:
        self._count("presence")
        return await self.presence_manager.presence(channel)

    async def read_presence_stats(self, channel: str) -> PresenceStats:
        self._count("presence_stats")
        return await self.presence_manager.presence_stats(channel)

    def _count(self, action: str) -> None:
        """centrifuge's `node_action_count`: engine calls and registry changes by kind."""
        if self.metrics is not None:
            self.metrics.action(action)

    def targets(self, user: str, client_id: str, session: str) -> list[Client]:
        """This node's connections a user-targeted command acts on.

        User "" is the anonymous user, as in Centrifugo's hub: it names the anonymous connections
        (narrowed by client id or session), never a connection of another user.
        """
        return self.hub.user_clients(user, client_id, session)

    async def disconnect(
        self,
        user: str,
        disconnect: codes.Disconnect = codes.DISCONNECT_FORCE_NO_RECONNECT,
        *,
        client_id: str = "",
        session: str = "",
        whitelist: Iterable[str] = (),
    ) -> None:
        """Closes a user's connections on every node, except the whitelisted client ids."""
        keep = tuple(whitelist)
        cluster.disconnect_local(self, user, client_id, session, disconnect, keep)
        await self._broadcast(cluster.disconnect_command(user, client_id, session, disconnect, keep))

    async def subscribe(
        self,
        user: str,
        channel: str,
        options: SubscribeOptions | None = None,
        *,
        client_id: str = "",
        session: str = "",
    ) -> None:
        """Subscribes a user's live connections server-side on every node; each gets a `subscribe` push."""
        opts = options or SubscribeOptions()
        await cluster.subscribe_local(self, user, client_id, session, channel, opts)
        await self._broadcast(cluster.subscribe_command(user, client_id, session, channel, opts))

    async def unsubscribe(self, user: str, channel: str, *, client_id: str = "", session: str = "") -> None:
        """Ends a user's subscriptions to ``channel`` on every node; each gets an `unsubscribe` push."""
        cluster.unsubscribe_local(self, user, client_id, session, channel)
        await self._broadcast(cluster.unsubscribe_command(user, client_id, session, channel))

    async def refresh(
        self,
        user: str,
        *,
        client_id: str = "",
        session: str = "",
        expired: bool = False,
        expire_at: int = 0,
        conn_info: bytes | None = None,
    ) -> None:
        """Extends or ends a user's connections on every node without the client's involvement."""
        cluster.refresh_local(self, user, client_id, session, expired, expire_at, conn_info)
        await self._broadcast(
            cluster.refresh_command(user, client_id, session, expired, expire_at, conn_info)
        )

    async def _broadcast(self, command: cluster.Command) -> None:
        if self.control is not None:
            await self.control.broadcast(command)

    def info(self) -> NodeInfo:
        """This node's id, name, version, counts and uptime."""
        return NodeInfo(
            uid=self.id,
            name=self.name,
            version=self.config.version,
            num_clients=len(self.hub.clients),
            num_users=len(self.hub.users),
            num_channels=len(self.hub.subscribers),
            num_subs=self.hub.num_subscriptions(),
            uptime=int(time.time() - self._started_at),
        )

    def channels(self, pattern: str = "") -> dict[str, int]:
        """Channels with subscribers on this node."""
        return self.hub.channels(pattern)

    async def cluster_info(self) -> list[NodeInfo]:
        """This node's stats and those of every live node of the cluster."""
        if self.control is None:
            return [self.info()]
        return [cluster.node_info(message) for message in self.control.live_nodes()]

    async def cluster_channels(self, pattern: str = "") -> dict[str, int]:
        """Channels with subscribers anywhere in the cluster, with their subscriber counts."""
        started = self.metrics.clock() if self.metrics is not None else 0.0
        found = self.channels(pattern)
        if self.control is not None:
            for answer in await self.control.survey(cluster.SURVEY_CHANNELS, pattern.encode()):
                for channel, count in cluster.decode_channels(answer).items():
                    found[channel] = found.get(channel, 0) + count
        if self.metrics is not None:
            self.metrics.survey("channels", self.metrics.clock() - started)
        return found
