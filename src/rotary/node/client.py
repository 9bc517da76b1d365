"""A connection driver: runs one Session against its Transport and the Node.

The transport's read loop calls `handle_frame` for every inbound frame; commands of one connection run
one after another, as Centrifugo does by default. Invariant: everything the session queued is written
(`flush`) before any await, so replies and the publications the hub writes directly never overtake
each other. See https://centrifugal.dev/docs/transports/client_protocol.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from rotary.engines.base import EngineError
from rotary.engines.outage import report_engine_error
from rotary.node import subscription
from rotary.node.commands import COMMANDS
from rotary.node.errors import ClientError, DisconnectError
from rotary.node.hooks import ChannelFeed
from rotary.node.transport import Transport
from rotary.protocol import codes, pb
from rotary.protocol.codec import ProtocolError, ProtocolType, codec_for
from rotary.session.channels import ChannelState
from rotary.session.session import Session, Status

if TYPE_CHECKING:
    from rotary.node.metrics import Metrics
    from rotary.node.node import Node

log = logging.getLogger("rotary.client")


ConnectFailure = codes.Disconnect | ClientError
"""Why a connect failed: a refusal that ends the connection, or an error reply's code."""

_UNI_ERROR_TO_DISCONNECT: dict[int, codes.Disconnect] = {
    codes.ERROR_EXPIRED.code: codes.DISCONNECT_EXPIRED,
    codes.ERROR_TOKEN_EXPIRED.code: codes.DISCONNECT_EXPIRED,
    codes.ERROR_TOO_MANY_REQUESTS.code: codes.DISCONNECT_TOO_MANY_REQUESTS,
    codes.ERROR_PERMISSION_DENIED.code: codes.DISCONNECT_PERMISSION_DENIED,
}
"""centrifuge's mapping of connect errors for unidirectional clients, applied after the configured one."""

_UNUSABLE = Status.UNUSABLE
"""Bound once: on Python 3.11 an Enum class attribute costs about 850 instructions, and it is
asked after every command."""


def uuid4_string(random: bytes | None = None) -> str:
    """``str(uuid.uuid4())`` (or of ``uuid.UUID(bytes=random, version=4)``): the same 16 random
    bytes with the version and variant bits set, spelled the same, without building a UUID object
    (its __init__ and __str__ were about 10k instructions of every connect)."""
    raw = bytearray(os.urandom(16) if random is None else random)
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    digits = raw.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class Client:
    """One client connection, as hooks and the hub see it."""

    def __init__(
        self, node: Node, transport: Transport, headers: Mapping[str, str] | None = None, remote: str = ""
    ) -> None:
        self.node = node
        self.transport = transport
        self.id = uuid4_string()
        self.user = ""
        self.conn_info = b""
        self.meta = b""
        self.session_id = uuid4_string() if transport.unidirectional else ""
        self.headers: Mapping[str, str] = headers or {}
        self.emulated_headers: Mapping[str, str] = {}
        """Headers the client sent in its connect command (headers emulation)."""
        self.grpc_metadata: Mapping[str, str] = {}
        """Metadata of the GRPC call that opened the connection (set by uni_grpc)."""
        self.request: object | None = None
        """The host framework's request when a mount serves the connection (ConnectionInfo.request)."""
        self.feeds: dict[str, ChannelFeed] = {}
        """Feeds of this connection's subscriptions, by channel (node/subscription.py owns them)."""
        self.remote = remote
        self.metric_labels = (transport.name, "", "unnamed", "unversioned")
        """Centrifugo's connection labels (transport, accept_protocol, client_name, client_version),
        set by connect from the name and version the client reports."""
        self._loop = asyncio.get_running_loop()
        limits = node.session_limits(transport.unidirectional)
        self.session = Session(codec_for(transport.protocol), limits, self._loop.time())
        if node.metrics is not None:
            self.session.on_push = partial(node.metrics.message_sent, transport.name)
        self._tick: int | None = None
        """The tick of node.deadlines this connection waits in, if any."""
        self._refreshes: set[asyncio.Task[None]] | None = None
        """Server-side refreshes in flight (connection or subscriptions), cancelled at close; made
        by the first one (most connections never have one, and an empty set is 216 bytes)."""
        self.closed = False
        self._arm_timer()
        node.client_opened(self)

    def loop_time(self) -> float:
        return self._loop.time()

    # -- what hooks see ------------------------------------------------------------------------

    @property
    def transport_name(self) -> str:
        return self.transport.name

    @property
    def protocol(self) -> ProtocolType:
        return self.transport.protocol

    @property
    def channels(self) -> dict[str, ChannelState]:
        return self.session.channels

    def is_subscribed(self, channel: str) -> bool:
        return channel in self.session.channels

    def chan_info(self, channel: str) -> bytes:
        state = self.session.channels.get(channel)
        return state.chan_info if state is not None else b""

    def feed(self, channel: str) -> ChannelFeed | None:
        return self.feeds.get(channel)

    def client_info(self, chan_info: bytes = b"") -> pb.ClientInfo:
        return pb.ClientInfo(user=self.user, client=self.id, conn_info=self.conn_info, chan_info=chan_info)

    # -- input ---------------------------------------------------------------------------------

    async def handle_frame(self, data: bytes) -> None:
        """Runs every command of one inbound frame, in order."""
        try:
            commands = self.session.receive(data)
        except ProtocolError as exc:
            self._protocol_violation(exc)
            return
        metrics = self.node.metrics
        flushed = False  # the last command ran through _run, which writes what it queued
        for command in commands:
            if self.closed:
                return
            try:
                method = self.session.admit(command)
            except ProtocolError as exc:
                self._protocol_violation(exc)
                return
            if metrics is not None:
                # One frame usually holds one command; a batch's size is shared out evenly.
                size = len(data) // len(commands)
                metrics.message_received(self.transport.name, method or "unknown", size)
            if method is not None:
                await self._run(method, command)
                flushed = True
            else:
                flushed = False  # a pong: its deadline moved
                if metrics is not None and self.session.ping_sent_at is not None:
                    metrics.ping_pong(self.transport.name, self.loop_time() - self.session.ping_sent_at)
            if self.session.status is _UNUSABLE:
                break
        if not flushed:
            self.flush()

    async def connect_unidirectional(self, request: pb.ConnectRequest) -> ConnectFailure | None:
        """Runs the connect of a unidirectional transport, whose request came with the HTTP request
        or first message; its result goes out as a `connect` push.

        A failure is returned, not sent, and the caller must close the connection right away: with
        `unidirectional_disconnect` of it, or (3000) after an HTTP answer (`connect_code_to_http_response`).
        """
        failure: ConnectFailure
        try:
            await COMMANDS["connect"](self, pb.Command(id=1, connect=request))
        except DisconnectError as exc:
            failure = exc.disconnect
        except ClientError as exc:
            failure = exc
        except Exception:
            log.exception("error handling connect of unidirectional client %s", self.id)
            failure = codes.DISCONNECT_SERVER_ERROR
        else:
            self.flush()
            return None
        return failure

    def unidirectional_disconnect(self, failure: ConnectFailure) -> codes.Disconnect:
        """The disconnect a failed unidirectional connect ends with: a refusal as is, an error by the
        `client.connect_code_to_unidirectional_disconnect` rules, then centrifuge's defaults, else 3004."""
        if isinstance(failure, codes.Disconnect):
            return failure
        configured = self.node.config.unidirectional_code_to_disconnect.get(failure.code)
        if configured is not None:
            return configured
        return _UNI_ERROR_TO_DISCONNECT.get(failure.code, codes.DISCONNECT_SERVER_ERROR)

    def _protocol_violation(self, exc: ProtocolError) -> None:
        log.info("bad request from client %s: %s", self.id, exc, extra={"client": self.id, "user": self.user})
        self.close(codes.DISCONNECT_BAD_REQUEST)

    async def _run(self, method: str, command: pb.Command) -> None:
        error: codes.ErrorCode | ClientError
        metrics = self.node.metrics
        started = metrics.clock() if metrics is not None else 0.0
        queued = self.session.queued_bytes - self.session.pushed_bytes
        try:
            await COMMANDS[method](self, command)
        except DisconnectError as exc:
            self.flush()
            self.close(exc.disconnect)
            return
        except ClientError as exc:
            error = exc
        except EngineError as exc:
            report_engine_error(f"{method} of client {self.id}", exc)
            error = codes.ERROR_INTERNAL
        except Exception:
            log.exception(
                "error handling %s of client %s (user %r)",
                method,
                self.id,
                self.user,
                extra={"client": self.id, "user": self.user, "command": method},
            )
            error = codes.ERROR_INTERNAL
        else:
            if metrics is not None:
                self._count_reply(metrics, method, started, queued)
            self.flush()
            return
        self.session.send_error(command.id, error.code, error.message, error.temporary)
        if method == "connect":
            self.session.connect_failed(self.loop_time())
        if metrics is not None:
            metrics.reply_error(method, error.code)
            self._count_reply(metrics, method, started, queued)
        self.flush()

    def _count_reply(self, metrics: Metrics, method: str, started: float, queued: int) -> None:
        """The command's duration, and its reply as one message of the bytes the command queued
        besides pushes (``queued`` is the same difference before it ran; pushes count on their own)."""
        metrics.command(method, metrics.clock() - started)
        if method != "send":  # `send` has no reply
            replied = self.session.queued_bytes - self.session.pushed_bytes - queued
            metrics.message_sent(self.transport.name, method, replied)

    # -- output --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Writes what the session queued and re-arms the timer if its next deadline may have moved."""
        if self.closed:
            return
        session = self.session
        data = session.data_to_send()
        if data is not None:
            self.transport.write(data)
        if session.deadlines_moved:
            self._arm_timer()

    def _arm_timer(self) -> None:
        session = self.session
        session.deadlines_moved = False
        deadline = session.next_deadline()
        deadlines = self.node.deadlines
        tick = None if deadline is None else deadlines.tick_of(deadline)
        if tick == self._tick:
            return
        if self._tick is not None:
            deadlines.remove(self, self._tick)
        self._tick = tick
        if tick is not None:
            deadlines.add(self, tick)

    def deadline_due(self) -> None:
        """node.deadlines calls this at the tick of the session's next deadline."""
        self._tick = None
        if self.closed:
            return
        disconnect = self.session.timer_fired(self._loop.time(), time.time())
        if disconnect is not None:
            self.close(disconnect)
            return
        if self.session.refresh_due:
            self.session.refresh_due = False
            self._start_refresh(self._refresh_connection())
        self._end_expired_subscriptions()
        self.flush()

    def _end_expired_subscriptions(self) -> None:
        """Client-side subscriptions get `unsubscribe` 2501; expired server-side ones end the connection.
        Subscriptions the server refreshes itself are refreshed first."""
        expired, self.session.expired_channels = self.session.expired_channels, []
        for channel in expired:
            state = self.session.channels.get(channel)
            if state is None:
                continue
            if state.server_side_refresh:
                self._start_refresh(self._refresh_subscription(state))
                continue
            self._end_expired(state)
            if self.closed:
                return

    def _end_expired(self, state: ChannelState) -> None:
        if state.server_side:
            self.close(codes.DISCONNECT_SUB_EXPIRED)
        else:
            subscription.end(self, state.channel, codes.UNSUBSCRIBE_EXPIRED)

    # -- server-side refresh (centrifuge's refresh and sub refresh handlers without a client command) --

    def _start_refresh(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        if self._refreshes is None:
            self._refreshes = set()
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh_connection(self) -> None:
        """A refusal closes with its code, any other failure 3004; no new expiry (or a past one) 3005."""
        try:
            decision = await self.node.hooks.on_refresh(self, pb.RefreshRequest())
        except DisconnectError as exc:
            self.close(exc.disconnect)
            return
        except Exception:
            log.exception("error refreshing connection of client %s", self.id)
            self.close(codes.DISCONNECT_SERVER_ERROR)
            return
        if self.closed:
            return
        wall_now = time.time()
        if decision.expired or max(decision.expire_at, self.session.expire_at) <= wall_now:
            self.close(codes.DISCONNECT_EXPIRED)
            return
        if decision.expire_at > 0:
            if decision.conn_info is not None:
                self.conn_info = decision.conn_info
            if decision.meta is not None:
                self.meta = decision.meta
            self.session.set_expiry(decision.expire_at, self.loop_time(), wall_now)
        self.flush()

    async def _refresh_subscription(self, state: ChannelState) -> None:
        """A failure, an expired answer or a past expiry ends the subscription as its expiry would."""
        channel = state.channel
        try:
            decision = await self.node.hooks.on_sub_refresh(self, pb.SubRefreshRequest(channel=channel))
        except (ClientError, DisconnectError):
            decision = None
        except Exception:
            log.exception("error refreshing subscription %s of client %s", channel, self.id)
            decision = None
        if self.closed or self.session.channels.get(channel) is not state:
            return
        wall_now = time.time()
        if decision is None or decision.expired or 0 < decision.expire_at < wall_now:
            self._end_expired(state)
        else:
            state.refresh(decision.expire_at, decision.chan_info)
            self.session.set_subscription_expiry(channel, decision.expire_at, self.loop_time(), wall_now)
        self.flush()

    # -- end -----------------------------------------------------------------------------------

    def close(self, disconnect: codes.Disconnect) -> None:
        """Closes the connection and lets the node clean up after it; idempotent and synchronous."""
        if self.closed:
            return
        subscription.deliver_before_close(self)
        self.closed = True
        log.debug(
            "closing client connection: client %s, user %r, code %d, reason %s",
            self.id,
            self.user,
            disconnect.code,
            disconnect.reason,
            extra={
                "client": self.id,
                "user": self.user,
                "code": disconnect.code,
                "reason": disconnect.reason,
            },
        )
        dropped = self.session.dropped
        ended = self.session.close()
        if self._tick is not None:
            self.node.deadlines.remove(self, self._tick)
            self._tick = None
        for task in self._refreshes or ():
            task.cancel()
        if dropped:
            self.transport.abort()
        else:
            pushed = self.transport.close(disconnect)
            metrics = self.node.metrics
            if metrics is not None and pushed:
                metrics.message_sent(self.transport.name, "push_disconnect", pushed)
            if metrics is not None and disconnect.code != codes.DISCONNECT_CONNECTION_CLOSED.code:
                metrics.server_disconnect(self.transport.name, disconnect.code)
        self.node.client_closed(self, disconnect)
        subscription.release(self, ended)

    def insufficient_state(self, channel: str) -> None:
        """A publication was lost for this subscriber: it must resubscribe (or reconnect)."""
        state = self.session.channels.get(channel)
        if state is None or self.closed:
            return
        if state.server_side:
            self.close(codes.DISCONNECT_INSUFFICIENT_STATE)
            return
        subscription.end(self, channel, codes.UNSUBSCRIBE_INSUFFICIENT_STATE)
