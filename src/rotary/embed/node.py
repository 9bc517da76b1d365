"""The public Node: rotary's in-process hub, configured by constructor and hooked in Python.

It is the internal ``rotary.node.node.Node`` (what transports and mounts serve) with the public
API on top: engines by constructor, hooks registered with decorators, data in and out as Python
values. See docs/embedding.md and https://centrifugal.dev/docs/server/server_api for the operations.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from rotary._version import __version__
from rotary.embed.adapter import PythonHooks, client_fields
from rotary.embed.data import ClientInfo, History, client_info, encode, publication
from rotary.embed.engines import Engine, MemoryEngine
from rotary.embed.errors import ClientError, Disconnect
from rotary.embed.events import ChannelOptions, ConnectEvent, DisconnectEvent, SubscribeReply
from rotary.embed.hookset import (
    ConnectHook,
    ConnectingHook,
    DisconnectHook,
    HistoryHook,
    HookSet,
    PresenceHook,
    PublishHook,
    RefreshHook,
    RPCHook,
    SubRefreshHook,
    SubscribeHook,
)
from rotary.engines.base import (
    HistoryQuery,
    PresenceStats,
    PublishOptions,
    PublishResult,
    StreamPosition,
    UnrecoverablePositionError,
)
from rotary.node import node as _node
from rotary.node.errors import DisconnectError
from rotary.node.hooks import SubscribeOptions
from rotary.protocol import codes

if TYPE_CHECKING:
    from rotary.node.client import Client

log = logging.getLogger("rotary.hooks")

_PLAIN = ChannelOptions()
"""No presence, no history: Centrifugo's defaults for a channel."""


class Node(_node.Node):
    """rotary's hub: clients connect to it through a transport or mount, and the application
    publishes to them, reads history and presence, and decides in hooks who may do what.

    ``async with Node(...) as node:`` starts it and shuts it down (every client gets disconnect
    3001 "shutdown"); or call :meth:`start` and :meth:`shutdown`.
    """

    def __init__(
        self,
        *,
        engine: Engine | None = None,
        name: str = "",
        channel_options: ChannelOptions | Callable[[str], ChannelOptions] = _PLAIN,
        insecure: bool = False,
        client_channel_limit: int = 128,
        user_connection_limit: int = 0,
        history_max_publication_limit: int = 300,
        ping_interval: float = 25.0,
        pong_timeout: float = 8.0,
    ) -> None:
        """
        Args:
            engine: where publications, history and presence live; :class:`MemoryEngine` by default.
            name: the node's name in ``info()`` (a generated id when empty).
            channel_options: what channels do (presence, history, recovery): one
                :class:`ChannelOptions` for all, or a function of the channel name (namespaces).
            insecure: Centrifugo's ``client.insecure``: what no hook forbids is allowed, including
                anonymous connections. For development only.
            client_channel_limit: subscriptions one connection may hold (error 106 beyond).
            user_connection_limit: connections one user may hold on this node (0 no limit).
            history_max_publication_limit: the most publications a client's history call returns.
            ping_interval: seconds between server pings (0 none); pong_timeout: seconds to answer.
        """
        parts = (engine or MemoryEngine())._parts(str(uuid.uuid4()))
        options = channel_options
        self._channel_options: Callable[[str], ChannelOptions] = (
            options if callable(options) else lambda channel: options
        )
        self._hook_set = HookSet()
        self._python_hooks = PythonHooks(self._hook_set, self._channel_options, insecure)
        config = _node.NodeConfig(
            name=name,
            version=__version__,
            channel_limit=client_channel_limit,
            user_connection_limit=user_connection_limit,
            history_max_publication_limit=history_max_publication_limit,
            ping_interval=ping_interval,
            pong_timeout=pong_timeout,
        )
        super().__init__(
            config,
            hooks=self._python_hooks,
            broker=parts.broker,
            presence_manager=parts.presence_manager,
            controller=parts.controller,
        )

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    # -- hooks ---------------------------------------------------------------------------------

    def on_connecting(self, hook: ConnectingHook) -> ConnectingHook:
        """Registers the hook that authenticates a connecting client (a decorator).

        It returns a :class:`ConnectReply` naming the user, or raises :class:`ClientError` (for
        example :class:`Unauthorized`) or :class:`Disconnect`. Without it connections are refused
        (3501), unless the node is ``insecure``."""
        self._hook_set.connecting = hook
        return hook

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Registers the hook told of every connected client, before its next command runs.
        Raising :class:`Disconnect` closes the connection; other errors are logged."""
        self._hook_set.connect = hook
        return hook

    def on_subscribe(self, hook: SubscribeHook) -> SubscribeHook:
        """Registers the hook that allows a subscription: return None or a :class:`SubscribeReply`,
        or raise (:class:`PermissionDenied`, ...). Without it subscriptions are denied (103)."""
        self._hook_set.subscribe = hook
        return hook

    def on_publish(self, hook: PublishHook) -> PublishHook:
        """Registers the hook that allows a client's publication: return None to publish it as sent
        or a :class:`PublishReply`, or raise. Without it clients may not publish (103)."""
        self._hook_set.publish = hook
        return hook

    def on_rpc(self, hook: RPCHook) -> RPCHook:
        """Registers the hook that answers RPCs: its return value (bytes or JSON-able) is the
        result; raise :class:`MethodNotFound` for an unknown method. Without it every RPC is 104."""
        self._hook_set.rpc = hook
        return hook

    def on_refresh(self, hook: RefreshHook) -> RefreshHook:
        """Registers the hook that extends a connection with an ``expire_at`` (a
        :class:`RefreshReply`). Without it such a connection ends at its expiry (3005)."""
        self._hook_set.refresh = hook
        return hook

    def on_sub_refresh(self, hook: SubRefreshHook) -> SubRefreshHook:
        """Registers the hook that extends a subscription with an ``expire_at`` (a
        :class:`SubRefreshReply`). Without it such a subscription ends at its expiry (2501)."""
        self._hook_set.sub_refresh = hook
        return hook

    def on_presence(self, hook: PresenceHook) -> PresenceHook:
        """Registers the permission check of presence and presence_stats: return to allow, raise to
        deny. Without it only the channel's subscribers may ask."""
        self._hook_set.presence = hook
        return hook

    def on_history(self, hook: HistoryHook) -> HistoryHook:
        """Registers the permission check of history: return to allow, raise to deny. Without it
        only the channel's subscribers may read it."""
        self._hook_set.history = hook
        return hook

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        """Registers the hook told of every connected client's end, in the background (errors are
        logged)."""
        self._hook_set.disconnect = hook
        return hook

    async def client_connected(self, client: Client) -> None:
        hook = self._hook_set.connect
        if hook is None:
            return
        try:
            await hook(ConnectEvent(**client_fields(client)))
        except DisconnectError:
            raise
        except Exception:
            log.exception("on_connect failed for client %s", client.id)

    def client_disconnected(self, client: Client, disconnect: codes.Disconnect) -> None:
        hook = self._hook_set.disconnect
        if hook is None:
            return
        event = DisconnectEvent(**client_fields(client), code=disconnect.code, reason=disconnect.reason)

        async def notify() -> None:
            await hook(event)

        self.spawn(notify())

    # -- operations ----------------------------------------------------------------------------

    def _publish_options(
        self,
        channel: str,
        tags: Mapping[str, str] | None,
        idempotency_key: str,
        history_size: int | None,
        history_ttl: float | None,
    ) -> PublishOptions:
        channel_options = self._channel_options(channel)
        return PublishOptions(
            history_size=channel_options.history_size if history_size is None else history_size,
            history_ttl=channel_options.history_ttl if history_ttl is None else history_ttl,
            history_meta_ttl=channel_options.history_meta_ttl,
            tags=dict(tags or {}),
            idempotency_key=idempotency_key,
        )

    async def publish(
        self,
        channel: str,
        data: object,
        options: PublishOptions | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str = "",
        history_size: int | None = None,
        history_ttl: float | None = None,
    ) -> PublishResult:
        """Publishes ``data`` (bytes as they are, anything else as JSON) to the channel's
        subscribers on every node; kept in history as the channel's options say, unless
        ``history_size``/``history_ttl`` say otherwise. (``options`` is for rotary's own use.)

        Returns the publication's position in the stream; ``suppressed`` when an earlier
        publication with the same ``idempotency_key`` made this one a repeat."""
        if options is None:
            options = self._publish_options(channel, tags, idempotency_key, history_size, history_ttl)
        return await super().publish(channel, encode(data), options)

    async def broadcast(
        self,
        channels: Iterable[str],
        data: object,
        *,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str = "",
    ) -> list[PublishResult]:
        """Publishes the same data to several channels (encoded once), in parallel."""
        payload = encode(data)
        return list(
            await asyncio.gather(
                *(
                    super(Node, self).publish(
                        channel, payload, self._publish_options(channel, tags, idempotency_key, None, None)
                    )
                    for channel in channels
                )
            )
        )

    async def history(
        self,
        channel: str,
        *,
        limit: int = -1,
        since: StreamPosition | None = None,
        reverse: bool = False,
    ) -> History:
        """The channel's kept publications: all of them (``limit`` -1), the first ``limit`` (the
        newest ones with ``reverse``), none (0: the stream position only); ``since`` those after a
        position. Raises ``ClientError`` 112 when ``since`` names another epoch of the stream."""
        meta_ttl = self._channel_options(channel).history_meta_ttl
        try:
            found = await self.read_history(channel, HistoryQuery(since, limit, reverse, meta_ttl))
        except UnrecoverablePositionError:
            raise ClientError(codes.ERROR_UNRECOVERABLE_POSITION.code) from None
        return History([publication(pub) for pub in found.publications], found.position)

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Who is subscribed to the channel on every node, by client id (channels with presence)."""
        return {
            client_id: client_info(info) for client_id, info in (await self.read_presence(channel)).items()
        }

    async def presence_stats(self, channel: str) -> PresenceStats:
        """How many clients and distinct users are subscribed to the channel."""
        return await self.read_presence_stats(channel)

    async def subscribe(
        self,
        user: str,
        channel: str,
        options: SubscribeOptions | SubscribeReply | None = None,
        *,
        client_id: str = "",
        session: str = "",
    ) -> None:
        """Subscribes a user's connections (or one connection, by ``client_id``) to a channel on every
        node, with the channel's options; each gets a ``subscribe`` push."""
        if not isinstance(options, SubscribeOptions):
            options = self._python_hooks.subscription(channel, options or SubscribeReply(), None)
        await super().subscribe(user, channel, options, client_id=client_id, session=session)

    async def disconnect(
        self,
        user: str,
        disconnect: codes.Disconnect | Disconnect = codes.DISCONNECT_FORCE_NO_RECONNECT,
        *,
        client_id: str = "",
        session: str = "",
        whitelist: Iterable[str] = (),
    ) -> None:
        """Closes a user's connections (or one, by ``client_id``) on every node, with
        ``Disconnect(code, reason)`` (3503 "force disconnect" by default), except ``whitelist``ed
        client ids."""
        if isinstance(disconnect, Disconnect):
            disconnect = disconnect.disconnect
        await super().disconnect(user, disconnect, client_id=client_id, session=session, whitelist=whitelist)
