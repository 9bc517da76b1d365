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

import fnmatch
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rotary.protocol import fossil, pb, prepared
from rotary.protocol.codec import ProtocolType
from rotary.protocol.codes import DISCONNECT_SLOW, Disconnect
from rotary.session.channels import ChannelState, SubscriptionStatus, Verdict

if TYPE_CHECKING:
    from rotary.node.client import Client

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

    def __init__(self, queue_max_size: int, schedule: Callable[[Callable[[], None]], None]) -> None:
        self.clients: dict[str, Client] = {}
        self.users: dict[str, dict[str, Client]] = {}
        self.subscribers: dict[str, dict[EncodingKey, dict[str, Subscriber]]] = {}
        self._queue_max_size = queue_max_size
        self._schedule = schedule

    # -- connections ---------------------------------------------------------------------------

    def add_client(self, client: Client) -> None:
        self.clients[client.id] = client
        self.users.setdefault(client.user, {})[client.id] = client

    def remove_client(self, client: Client) -> None:
        self.clients.pop(client.id, None)
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
                break
        if not groups:
            del self.subscribers[channel]
            return True
        return False

    def has_subscribers(self, channel: str) -> bool:
        return channel in self.subscribers

    def channels(self, pattern: str = "") -> dict[str, int]:
        """Channels with local subscribers and their counts, optionally filtered by a glob."""
        return {
            ch: sum(len(g) for g in groups.values())
            for ch, groups in self.subscribers.items()
            if not pattern or fnmatch.fnmatchcase(ch, pattern)
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
        """Delivers ``pub`` to the local subscribers of ``channel``; ``prev`` (the channel's previous
        publication) is given when the publisher asked for delta compression, ``epoch`` is that of
        the stream the offset belongs to."""
        groups = self.subscribers.get(channel)
        if not groups:
            return
        troubled: list[Callable[[], None]] = []
        patch = _Patch(prev, pub) if prev is not None else None
        for key, group in groups.items():
            if key[3]:
                self._fan_out_delta(channel, pub, offset, epoch, key, group, patch, troubled)
            else:
                self._fan_out(channel, pub, offset, epoch, key, group, troubled)
        for action in troubled:
            self._schedule(action)

    def _fan_out(
        self,
        channel: str,
        pub: pb.Publication,
        offset: int,
        epoch: str,
        key: EncodingKey,
        group: dict[str, Subscriber],
        troubled: list[Callable[[], None]],
    ) -> None:
        """The hot loop: one verdict, one filter check and one write per subscriber."""
        limit = self._queue_max_size
        frame: bytes | None = None
        for sub in group.values():
            state = sub.state
            if state.status is SubscriptionStatus.SUBSCRIBED and not state.positioned:
                verdict = Verdict.DELIVER
            else:
                verdict = state.accept(offset, epoch)
            if verdict is Verdict.DELIVER:
                if state.tags_filter is not None and not state.tags_filter(pub.tags):
                    continue
                if frame is None:
                    frame = sub.transport.frame(prepared.publication_push(channel, pub, key[0], key[1]))
                transport = sub.transport
                transport.write_prepared(frame)
                if limit and transport.buffered_bytes() > limit:
                    troubled.append(_closer(sub.client, DISCONNECT_SLOW))
            elif verdict is Verdict.BUFFER:
                state.buffered.append((pub, offset))
            elif verdict is Verdict.GAP:
                troubled.append(_resync(sub.client, channel))

    def _fan_out_delta(
        self,
        channel: str,
        pub: pb.Publication,
        offset: int,
        epoch: str,
        key: EncodingKey,
        group: dict[str, Subscriber],
        patch: _Patch | None,
        troubled: list[Callable[[], None]],
    ) -> None:
        """Like `_fan_out` for a delta group: a subscriber gets the delta frame once it holds a base.

        A delta subscriber gets every publication (the chain of deltas needs them all), so tags
        filters do not apply here.
        """
        limit = self._queue_max_size
        frames: dict[bool, bytes] = {}
        for sub in group.values():
            state = sub.state
            verdict = state.accept(offset, epoch)
            if verdict is Verdict.DELIVER:
                as_delta = state.delta_ready and patch is not None
                frame = frames.get(as_delta)
                if frame is None:
                    base_patch = patch.value() if as_delta and patch is not None else None
                    data = prepared.delta_publication_push(channel, pub, base_patch, key[0], key[1])
                    frame = frames[as_delta] = sub.transport.frame(data)
                state.delta_ready = True
                transport = sub.transport
                transport.write_prepared(frame)
                if limit and transport.buffered_bytes() > limit:
                    troubled.append(_closer(sub.client, DISCONNECT_SLOW))
            elif verdict is Verdict.BUFFER:
                state.buffered.append((pub, offset))
            elif verdict is Verdict.GAP:
                troubled.append(_resync(sub.client, channel))

    def broadcast_join_leave(self, channel: str, info: pb.ClientInfo, join: bool) -> None:
        groups = self.subscribers.get(channel)
        if not groups:
            return
        build = prepared.join_push if join else prepared.leave_push
        for (protocol, uni, _, _), group in groups.items():
            frame: bytes | None = None
            for sub in _join_leave_receivers(group):
                if frame is None:
                    frame = sub.transport.frame(build(channel, info, protocol, uni))
                sub.transport.write_prepared(frame)


class _Patch:
    """The fossil delta between two publications' data, computed on first use and only once."""

    __slots__ = ("_prev", "_pub", "_value")

    def __init__(self, prev: pb.Publication, pub: pb.Publication) -> None:
        self._prev = prev
        self._pub = pub
        self._value: bytes | None = None

    def value(self) -> bytes:
        if self._value is None:
            self._value = fossil.create(self._prev.data, self._pub.data)
        return self._value


def _join_leave_receivers(group: dict[str, Subscriber]) -> Iterator[Subscriber]:
    for sub in group.values():
        if sub.state.push_join_leave and sub.state.status is SubscriptionStatus.SUBSCRIBED:
            yield sub


def _closer(client: Client, disconnect: Disconnect) -> Callable[[], None]:
    return lambda: client.close(disconnect)


def _resync(client: Client, channel: str) -> Callable[[], None]:
    return lambda: client.insufficient_state(channel)
