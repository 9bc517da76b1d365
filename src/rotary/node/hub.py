"""This node's registry of connections and subscriptions, and the synchronous fan-out.

A publication is encoded once per group of subscribers that share an encoding key (protocol,
uni/bidirectional, framing, delta type) and the same ``bytes`` object is written to each socket: no
task, no await and no encode per connection. A delta group needs at most two frames: the whole
publication for subscribers without a base yet, and the fossil delta from the previous publication
for the others (https://centrifugal.dev/docs/server/delta_compression). A tags filter only decides
whether a subscriber gets the group's frame
(https://centrifugal.dev/docs/server/publication_filtering). See ARCHITECTURE.md, "Data flow (b)".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rotary.node import fanout
from rotary.protocol import pb, prepared
from rotary.protocol.codec import ProtocolType
from rotary.protocol.glob import InvalidPattern, compile_pattern
from rotary.session.channels import ChannelState, SubscriptionStatus

if TYPE_CHECKING:
    from rotary.node.client import Client
    from rotary.node.metrics import Metrics

log = logging.getLogger("rotary.hub")

EncodingKey = tuple[ProtocolType, bool, str, str]
"""Protocol, unidirectional, framing, delta type: subscribers with equal keys get equal bytes."""


class Subscriber:
    __slots__ = ("client", "state", "transport")

    def __init__(self, client: Client, state: ChannelState) -> None:
        self.client = client
        self.state = state
        self.transport = client.transport


def encoding_key(client: Client, delta: str = "") -> EncodingKey:
    t = client.transport
    return (t.protocol, t.unidirectional, t.framing, delta)


class Hub:
    """Clients by id and user, and subscribers by channel and encoding key."""

    def __init__(
        self,
        queue_max_size: int,
        schedule: Callable[[Callable[[], None]], None],
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        """Counts connections, subscriptions and delivered messages when Prometheus is enabled."""
        self.clients: dict[str, Client] = {}
        self.users: dict[str, dict[str, Client]] = {}
        self.subscribers: dict[str, dict[EncodingKey, dict[str, Subscriber]]] = {}
        self._queue_max_size = queue_max_size
        self._schedule = schedule
        self._pending: dict[str, list[fanout.Item]] = {}
        self._flush_scheduled = False

    # -- connections ---------------------------------------------------------------------------

    def add_client(self, client: Client) -> None:
        self.clients[client.id] = client
        self.users.setdefault(client.user, {})[client.id] = client
        if self.metrics is not None:
            self.metrics.connection_added(client.metric_labels)

    def remove_client(self, client: Client) -> None:
        if self.clients.pop(client.id, None) is not None and self.metrics is not None:
            self.metrics.connection_removed(client.metric_labels)
        user_clients = self.users.get(client.user)
        if user_clients is not None:
            user_clients.pop(client.id, None)
            if not user_clients:
                del self.users[client.user]

    def user_clients(self, user: str, client_id: str = "", session: str = "") -> list[Client]:
        """Connections of a user, narrowed to one client id or session when given."""
        found = self.users.get(user, {})
        return [
            c
            for c in found.values()
            if (not client_id or c.id == client_id) and (not session or c.session_id == session)
        ]

    # -- subscriptions -------------------------------------------------------------------------

    def add_subscriber(self, channel: str, client: Client, state: ChannelState) -> bool:
        """Registers a subscriber; True when it is the first on this node for the channel."""
        groups = self.subscribers.get(channel)
        first = groups is None
        if groups is None:
            groups = self.subscribers[channel] = {}
        groups.setdefault(encoding_key(client, state.delta), {})[client.id] = Subscriber(client, state)
        if self.metrics is not None:
            self.metrics.subscription_added(client.metric_labels[2])
        return first

    def remove_subscriber(self, channel: str, client: Client) -> bool:
        """Removes a subscriber; True when no subscriber of the channel remains on this node."""
        groups = self.subscribers.get(channel)
        if groups is None:
            return False
        for key, group in groups.items():
            if group.pop(client.id, None) is not None:
                if not group:
                    del groups[key]
                if self.metrics is not None:
                    self.metrics.subscription_removed(client.metric_labels[2])
                break
        if not groups:
            del self.subscribers[channel]
            return True
        return False

    def has_subscribers(self, channel: str) -> bool:
        return channel in self.subscribers

    def channels(self, pattern: str = "") -> dict[str, int]:
        """Channels with local subscribers and their counts, optionally filtered by a glob
        (Centrifugo's: see protocol/glob.py); a pattern that does not compile matches nothing."""
        try:
            matches = compile_pattern(pattern) if pattern else None
        except InvalidPattern:
            return {}
        return {
            ch: sum(len(g) for g in groups.values())
            for ch, groups in self.subscribers.items()
            if matches is None or matches(ch)
        }

    def num_subscriptions(self) -> int:
        return sum(len(g) for groups in self.subscribers.values() for g in groups.values())

    # -- fan-out -------------------------------------------------------------------------------

    def broadcast_publication(
        self,
        channel: str,
        pub: pb.Publication,
        offset: int,
        prev: pb.Publication | None = None,
        epoch: str = "",
    ) -> None:
        """Queues ``pub`` for the local subscribers of ``channel``; they get it at the end of this loop pass.

        ``prev`` (the channel's previous publication) is given when the publisher asked for delta
        compression, ``epoch`` is that of the stream the offset belongs to.
        """
        if channel not in self.subscribers:
            return
        item = fanout.Item(pub, offset, epoch, prev)
        queued = self._pending.get(channel)
        if queued is not None:
            queued.append(item)
            return
        self._pending[channel] = [item]
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._schedule(self.flush)

    def flush(self) -> None:
        """Delivers every queued publication, each channel's in arrival order."""
        self._flush_scheduled = False
        while self._pending:
            channel = next(iter(self._pending))
            self._deliver(channel, self._pending.pop(channel))

    def flush_channel(self, channel: str) -> None:
        """Delivers what is queued for one channel now, ahead of the end of the pass: a subscription
        about to end, or a join/leave, must come after the publications accepted before it."""
        items = self._pending.pop(channel, None)
        if items:
            self._deliver(channel, items)

    def _deliver(self, channel: str, items: list[fanout.Item]) -> None:
        """One group's failure cannot stop the others: its subscribers are told (2500 / 3010).

        With metrics on, the messages and bytes sent and the publications tags filters dropped are
        added once per group, never per subscriber.
        """
        groups = self.subscribers.get(channel)
        if not groups:
            return
        metrics = self.metrics
        started = metrics.clock() if metrics is not None else 0.0
        troubles: fanout.Troubles = []
        for key, group in groups.items():
            try:
                count, size, filtered = fanout.deliver(
                    channel, items, key, group, self._queue_max_size, troubles
                )
            except Exception:
                log.exception("fan-out to a group of channel %r failed; its subscribers resync", channel)
                troubles.extend(fanout.resync(sub, channel) for sub in group.values())
                continue
            if metrics is not None:
                if count:
                    transport = next(iter(group.values())).transport.name
                    metrics.message_sent(transport, "push_publication", size, count)
                if filtered:
                    metrics.tags_filter_dropped += filtered
        if metrics is not None:
            # Centrifugo times each publication's broadcast; a pass shares its time among its items.
            metrics.broadcasts.observe((metrics.clock() - started) / len(items), len(items))
        for action in troubles:
            self._schedule(action)

    def broadcast_join_leave(self, channel: str, info: pb.ClientInfo, join: bool) -> None:
        self.flush_channel(channel)
        groups = self.subscribers.get(channel)
        if not groups:
            return
        build = prepared.join_push if join else prepared.leave_push
        for (protocol, uni, _, _), group in groups.items():
            payload: bytes | None = None
            frame = b""
            count = 0
            for sub in _join_leave_receivers(group):
                if payload is None:
                    payload = build(channel, info, protocol, uni)
                    frame = sub.transport.frame(payload)
                sub.transport.write_prepared(frame)
                count += 1
            if self.metrics is not None and payload is not None:
                transport = next(iter(group.values())).transport.name
                frame_type = "push_join" if join else "push_leave"
                self.metrics.message_sent(transport, frame_type, len(payload) * count, count)


def _join_leave_receivers(group: dict[str, Subscriber]) -> Iterator[Subscriber]:
    for sub in group.values():
        if sub.state.push_join_leave and sub.state.status is SubscriptionStatus.SUBSCRIBED:
            yield sub
