"""A client connection as a sans-I/O state machine: command gate, replies, ping/pong and deadlines.

The session never awaits and never touches a socket. Its driver feeds it frames (`receive`), asks it
which command may run next (`admit`), collects encoded output (`data_to_send`), and calls
`timer_fired` at `next_deadline()`. Rules follow https://centrifugal.dev/docs/transports/client_protocol:
the first command must be `connect`; every command but `send` and the pong carries an id; a pong
answers exactly one ping; anything else ends the connection with 3501.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rotary.protocol import codes, pb
from rotary.protocol.codec import Codec, ProtocolError
from rotary.session.channels import ChannelState

if TYPE_CHECKING:
    from google.protobuf.message import Message

Ended = tuple[ChannelState, bool]
"""A subscription that just ended, and whether it had been live (its join announced)."""

REQUEST_FIELDS: tuple[str, ...] = (
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "ping",
    "send",
    "rpc",
    "refresh",
    "sub_refresh",
)
"""Command request fields in field-number order: the first one set names the method."""


class Status(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNUSABLE = "unusable"
    """Its connect failed: further frames are ignored until the connection is dropped."""
    CLOSED = "closed"


# Members bound once: on Python 3.11 an Enum class attribute goes through EnumType.__getattr__
# (about 850 instructions each), and the session asks for them on every frame.
_CONNECTING = Status.CONNECTING
_CONNECTED = Status.CONNECTED
_UNUSABLE = Status.UNUSABLE
_CLOSED = Status.CLOSED


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Timing of one connection, from the client config section (seconds; 0 disables)."""

    stale_close_delay: float = 10.0
    ping_interval: float = 25.0
    pong_timeout: float = 8.0
    expired_close_delay: float = 25.0
    expired_sub_close_delay: float = 25.0
    presence_update_interval: float = 25.0
    """Subscription expiry is checked on this periodic tick of the connection, as centrifuge checks it
    with the presence update, so an expired subscription ends (or is refreshed) at the first tick past
    its grace delay, not at its end."""
    unidirectional: bool = False
    unusable_drop_delay: float = 5.0
    """After a failed connect, frames are ignored for this long, then the socket is dropped without a
    goodbye: centrifuge stops reading and drains for its close-frame wait (5 s)."""


PUSH_FRAME_TYPES: tuple[tuple[str, str], ...] = (
    ("pub", "push_publication"),
    ("join", "push_join"),
    ("leave", "push_leave"),
    ("unsubscribe", "push_unsubscribe"),
    ("message", "push_message"),
    ("subscribe", "push_subscribe"),
    ("connect", "push_connect"),
    ("disconnect", "push_disconnect"),
    ("refresh", "push_refresh"),
)
"""A push's field and centrifuge's frame type name for it (the ``frame_type`` metric label)."""

SERVER_PING = "server_ping"
"""The frame type of a ping: an empty reply, or an empty push on unidirectional connections."""


def push_frame_type(push: pb.Push) -> str:
    for field, frame_type in PUSH_FRAME_TYPES:
        if push.HasField(field):
            return frame_type
    return SERVER_PING


class TimerEvent(enum.Enum):
    SEND_PING = "send_ping"


def request_method(command: pb.Command) -> str | None:
    for name in REQUEST_FIELDS:
        if command.HasField(name):
            return name
    return None


class Session:
    """State of one connection, independent of transport and event loop."""

    def __init__(self, codec: Codec, limits: SessionLimits, now: float) -> None:
        self.codec = codec
        self.limits = limits
        self.status = _CONNECTING
        self.channels: dict[str, ChannelState] = {}
        self.expire_at = 0
        """Unix seconds of connection expiry (0 never); the driver keeps it in wall-clock time."""
        self.server_side_refresh = False
        """At expiry the driver refreshes the connection itself (``refresh_due``) instead of closing it."""
        self.refresh_due = False
        self._outbox: list[bytes] = []
        self.queued_bytes = 0
        """Bytes of every message ever queued: what a command queued is the growth while it ran."""
        self.pushed_bytes = 0
        """Bytes of every push and ping ever queued (part of ``queued_bytes``)."""
        self.on_push: Callable[[str, int], None] | None = None
        """Told the frame type and encoded size of each push and ping queued, for the metrics."""
        self._stale_at = now + limits.stale_close_delay if limits.stale_close_delay > 0 else None
        self._ping_at: float | None = None
        self._pong_at: float | None = None
        self._awaiting_pong = False
        self.ping_sent_at: float | None = None
        """When the last ping that wants a pong went out (loop time), for the ping/pong duration."""
        self._expire_deadline: float | None = None
        self._drop_at: float | None = None
        self.dropped = False
        """The connection ended without a goodbye (no close frame or disconnect push)."""
        self._sub_deadlines: dict[str, float] = {}
        self._first_check: float | None = None
        """Loop time of the connection's first subscription expiry check; later ones follow it at
        ``presence_update_interval``."""
        self.expired_channels: list[str] = []
        """Subscriptions whose expiry passed without a refresh; the driver ends them."""
        self.deadlines_moved = True
        """A deadline was set or cleared since the driver last asked ``next_deadline``: it asks
        again only then (most of its flushes follow replies that move none), and clears this."""

    # -- input ---------------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[pb.Command]:
        """Decodes one frame; ProtocolError when it is not a valid frame."""
        status = self.status
        if status is _CLOSED or status is _UNUSABLE:
            return []
        return self.codec.decode_commands(data)

    def admit(self, command: pb.Command) -> str | None:
        """The method this command runs, or None for a pong; ProtocolError if it may not run now."""
        method = request_method(command)
        connected = self.status is _CONNECTED
        if not connected and method != "connect":
            raise ProtocolError("command before connect")
        if method is None:
            if command.id != 0:
                raise ProtocolError("command without request")
            self._receive_pong()
            return None
        if command.id == 0 and method != "send":
            raise ProtocolError("command without id")
        if method == "ping":
            raise ProtocolError("legacy ping command")
        if method == "connect" and connected:
            raise ProtocolError("second connect")
        return method

    def _receive_pong(self) -> None:
        if not self._awaiting_pong:
            raise ProtocolError("pong without ping")
        self._awaiting_pong = False
        self._pong_at = None
        self.deadlines_moved = True

    # -- lifecycle -----------------------------------------------------------------------------

    def connected(
        self, now: float, expire_at: int, wall_now: float, server_side_refresh: bool = False
    ) -> None:
        """The connect command succeeded: start pings and the expiry deadline."""
        self.status = _CONNECTED
        self.server_side_refresh = server_side_refresh
        self._stale_at = None
        self.deadlines_moved = True
        interval = self.limits.ping_interval
        if interval > 0:
            self._ping_at = now + random.uniform(interval / 2, interval)
        check = self.limits.presence_update_interval
        if check > 0:  # centrifuge spreads the first presence update as it spreads the first ping
            self._first_check = now + random.uniform(check / 2, check)
        self.set_expiry(expire_at, now, wall_now)

    def set_expiry(self, expire_at: int, now: float, wall_now: float) -> None:
        """Connection expiry moved (connect, refresh): close after it plus the grace delay."""
        self.expire_at = expire_at
        self.deadlines_moved = True
        if expire_at <= 0:
            self._expire_deadline = None
            return
        delay = 0.0 if self.server_side_refresh else self.limits.expired_close_delay
        self._expire_deadline = now + max(expire_at - wall_now, 0) + delay

    def set_subscription_expiry(self, channel: str, expire_at: int, now: float, wall_now: float) -> None:
        """The subscription expires at ``expire_at`` (0 never); unrefreshed, it ends at the first check
        of the connection where the Unix second is past ``expire_at`` plus the grace delay in whole
        seconds (centrifuge's ``checkSubscriptionExpiration``)."""
        if expire_at <= 0:
            if self._sub_deadlines.pop(channel, None) is not None:
                self.deadlines_moved = True
            return
        past = expire_at + int(self.limits.expired_sub_close_delay) + 1
        self._sub_deadlines[channel] = self._check_at_or_after(now + max(past - wall_now, 0))
        self.deadlines_moved = True

    def _check_at_or_after(self, moment: float) -> float:
        """The connection's first periodic check at or after ``moment`` (loop time)."""
        first, interval = self._first_check, self.limits.presence_update_interval
        if first is None or interval <= 0:
            return moment
        return first + max(math.ceil((moment - first) / interval), 0) * interval

    # -- subscriptions (their moves are ChannelState's table; this keeps them per connection) --

    def add_subscription(self, state: ChannelState) -> None:
        """A subscription starts (subscribing); at most one per channel and connection."""
        if state.channel in self.channels:
            raise ValueError(f"already subscribed to {state.channel!r}")
        self.channels[state.channel] = state

    def activate_subscription(
        self, state: ChannelState, epoch: str, offset: int, delta_ready: bool, now: float, wall_now: float
    ) -> None:
        """Its reply (or subscribe push) was queued: live from now, expiring at its expire_at."""
        state.activate(epoch, offset, delta_ready)
        self.set_subscription_expiry(state.channel, state.expire_at, now, wall_now)

    def end_subscription(self, channel: str, unsubscribe: codes.UnsubscribeCode | None) -> Ended | None:
        """Ends a subscription, queueing an `unsubscribe` push with the code when one is given.

        The caller (node/subscription.py) has delivered every publication accepted before.
        """
        state = self.channels.pop(channel, None)
        if state is None:
            return None
        if self._sub_deadlines.pop(channel, None) is not None:
            self.deadlines_moved = True
        was_live = state.end()
        if unsubscribe is not None and self.status is _CONNECTED:
            push = pb.Unsubscribe(code=unsubscribe.code, reason=unsubscribe.reason)
            self.send_push(pb.Push(channel=channel, unsubscribe=push))
        return state, was_live

    def connect_failed(self, now: float) -> None:
        """A connect was refused: the connection is unusable. As with Centrifugo, what the client
        sends next is ignored and the socket is dropped, without a close frame, a little later."""
        self.status = _UNUSABLE
        self._stale_at = self._ping_at = self._pong_at = self._expire_deadline = None
        self._drop_at = now + self.limits.unusable_drop_delay
        self.deadlines_moved = True

    def close(self) -> list[Ended]:
        """Closes the session and ends every subscription; returns them for the node to release."""
        self.status = _CLOSED
        self._ping_at = self._pong_at = self._stale_at = self._expire_deadline = self._drop_at = None
        self._sub_deadlines.clear()
        self.deadlines_moved = True
        ended = [(state, state.end()) for state in self.channels.values()]
        self.channels.clear()
        return ended

    # -- output --------------------------------------------------------------------------------

    def send_result(self, command_id: int, field: str, result: Message) -> None:
        """Queues the reply to a command: ``result`` in the Reply's field ``field``."""
        self._queue(self.codec.encode_result(command_id, field, result))

    def send_push(self, push: pb.Push) -> None:
        """Queues an async push: wrapped in a Reply, or bare on unidirectional connections."""
        if self.limits.unidirectional:
            message = self.codec.encode_push(push)
        else:
            message = self.codec.encode_reply(pb.Reply(push=push))
        self._queue_push(message, push_frame_type(push))

    def send_encoded(self, message: bytes, frame_type: str = "push_publication") -> None:
        """Queues an already encoded push (a prepared publication)."""
        self._queue_push(message, frame_type)

    def _queue_push(self, message: bytes, frame_type: str) -> None:
        self._queue(message)
        self.pushed_bytes += len(message)
        if self.on_push is not None:
            self.on_push(frame_type, len(message))

    def _queue(self, message: bytes) -> None:
        self._outbox.append(message)
        self.queued_bytes += len(message)

    def send_error(self, command_id: int, code: int, message: str, temporary: bool = False) -> None:
        self.send_result(command_id, "error", pb.Error(code=code, message=message, temporary=temporary))

    def data_to_send(self) -> bytes | None:
        """Everything queued, batched into one frame."""
        if not self._outbox:
            return None
        out = self._outbox
        self._outbox = []
        return out[0] if len(out) == 1 else self.codec.join(out)

    # -- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest deadline set, if any; the client asks after a flush whenever
        ``deadlines_moved``, so no list is built."""
        earliest = self._ping_at
        for t in (self._stale_at, self._pong_at, self._expire_deadline, self._drop_at):
            if t is not None and (earliest is None or t < earliest):
                earliest = t
        if self._sub_deadlines:
            t = min(self._sub_deadlines.values())
            if earliest is None or t < earliest:
                earliest = t
        return earliest

    def timer_fired(self, now: float, wall_now: float) -> codes.Disconnect | None:
        """Runs what is due: queues a ping, or returns the disconnect that must close the connection."""
        self.deadlines_moved = True  # the driver's timer fired: it waits for nothing until re-armed
        if self._drop_at is not None and now >= self._drop_at:
            self.dropped = True
            return codes.DISCONNECT_CONNECTION_CLOSED
        if self._stale_at is not None and now >= self._stale_at:
            return codes.DISCONNECT_STALE
        if self._pong_at is not None and now >= self._pong_at:
            return codes.DISCONNECT_NO_PONG
        if self._expire_deadline is not None and now >= self._expire_deadline and self.expire_at <= wall_now:
            if not self.server_side_refresh:
                return codes.DISCONNECT_EXPIRED
            self._expire_deadline, self.refresh_due = None, True
        if self._ping_at is not None and now >= self._ping_at:
            self._send_ping(now)
        self._expire_subscriptions(now, wall_now)
        return None

    def _expire_subscriptions(self, now: float, wall_now: float) -> None:
        for channel, deadline in list(self._sub_deadlines.items()):
            if now < deadline:
                continue
            del self._sub_deadlines[channel]
            state = self.channels.get(channel)
            if state is not None and 0 < state.expire_at <= wall_now:
                self.expired_channels.append(channel)

    def _send_ping(self, now: float) -> None:
        if self.limits.unidirectional:
            self.send_push(pb.Push())
        else:
            self._queue_push(self.codec.encode_reply(pb.Reply()), SERVER_PING)
            if self.limits.pong_timeout > 0:
                self._awaiting_pong = True
                self._pong_at = now + self.limits.pong_timeout
                self.ping_sent_at = now
        self._ping_at = now + self.limits.ping_interval
