"""The NATS broker: PUB/SUB between nodes and the control channel, without history.

NATS delivers at most once and keeps nothing, so this broker sets ``supports_history = False``
and config validation refuses namespaces that need history or recovery on it. Presence still
needs another engine (memory or Redis).
See https://centrifugal.dev/docs/server/engines#nats-broker

Subjects follow Centrifugo's layout: ``<prefix>.client.<channel>`` for a channel, ``<prefix>.control``
for messages to every node and ``<prefix>.node.<id>`` for one node. Unlike Centrifugo, the channel
is percent-escaped into a single subject token, so any channel name (dots, spaces, ``*``, ``>``) is
a valid, literal subject; wildcard subscriptions and raw mode are therefore not offered.

A channel message is one type byte followed by a protobuf body: a ``Publication`` (its ``delta``
flag carries whether the publisher asked for delta) or the ``ClientInfo`` of a join or leave.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable, Sequence

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from rotary.engines.base import (
    BrokerEventHandler,
    EngineError,
    HistoryQuery,
    HistoryResult,
    PublishOptions,
    PublishResult,
    StreamPosition,
    new_publication,
)
from rotary.engines.nats.connection import (
    DEFAULT_IDEMPOTENT_RESULT_TTL,
    Connection,
    NatsBrokerSettings,
    NatsOptions,
    as_engine_error,
    channel_subject,
)
from rotary.protocol import pb

log = logging.getLogger(__name__)


def _deliver_publication(handler: BrokerEventHandler, channel: str, body: bytes) -> None:
    pub = pb.Publication.FromString(body)
    delta, pub.delta = pub.delta, False
    handler.handle_publication(channel, pub, StreamPosition(), delta, None)


def _deliver_join(handler: BrokerEventHandler, channel: str, body: bytes) -> None:
    handler.handle_join(channel, pb.ClientInfo.FromString(body))


def _deliver_leave(handler: BrokerEventHandler, channel: str, body: bytes) -> None:
    handler.handle_leave(channel, pb.ClientInfo.FromString(body))


_PUBLICATION, _JOIN, _LEAVE = b"p", b"j", b"l"
_DELIVERIES: dict[bytes, Callable[[BrokerEventHandler, str, bytes], None]] = {
    _PUBLICATION: _deliver_publication,
    _JOIN: _deliver_join,
    _LEAVE: _deliver_leave,
}


async def _receive(handler: BrokerEventHandler, channel: str, msg: Msg) -> None:
    """Runs in nats-py's task for the channel's subscription; never awaits."""
    payload = msg.data
    deliver = _DELIVERIES.get(payload[:1])
    if deliver is None:
        log.warning("nats broker: dropped a message of unknown type on %s", msg.subject)
        return
    try:
        deliver(handler, channel, payload[1:])
    except DecodeError:
        log.warning("nats broker: dropped an undecodable message on %s", msg.subject)


class NatsBroker:
    """Broker over NATS subjects: one subscription per channel, at-most-once delivery.

    nats-py hands each subscription's messages, in arrival order, to one task per subscription,
    which calls the handler's sync methods. After a reconnect nats-py subscribes again by itself;
    what was published while disconnected is lost, as NATS promises nothing more, and the
    handler is told which channels that concerns (``handle_interrupted``) as soon as the loss is
    noticed. Idempotency keys are remembered by this node only.
    """

    supports_history = False

    def __init__(self, options: NatsOptions | None = None) -> None:
        self._options = options or NatsOptions()
        self._connection = Connection(self._options, "broker", on_lost=self._interrupted)
        self._subscriptions: dict[str, Subscription] = {}
        self._handler: BrokerEventHandler | None = None
        self._idempotency = _IdempotencyKeys()

    @classmethod
    def from_config(cls, config: NatsBrokerSettings, *, tls: ssl.SSLContext | None = None) -> NatsBroker:
        return cls(NatsOptions.from_config(config, tls=tls))

    @property
    def connected(self) -> bool:
        """Whether commands can go out now; False while nats-py reconnects."""
        return self._connection.connected

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        await self._connection.open()

    async def close(self) -> None:
        self._subscriptions.clear()
        await self._connection.close()

    async def subscribe(self, channels: Sequence[str]) -> None:
        """Returns once NATS has the subscriptions, so publications from any node after it arrive.

        On failure none of the channels this call added stays subscribed.
        """
        added: list[str] = []
        try:
            for channel in channels:
                if channel not in self._subscriptions and await self._subscribe_one(channel):
                    added.append(channel)
            if added:
                await self._connection.round_trip()
        except EngineError:
            await self.unsubscribe(added)
            raise

    async def unsubscribe(self, channels: Sequence[str]) -> None:
        """Never fails while disconnected: nats-py then just forgets the subscription."""
        for channel in channels:
            subscription = self._subscriptions.pop(channel, None)
            if subscription is not None:
                with as_engine_error(f"unsubscribe {channel!r}"):
                    await subscription.unsubscribe()

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        key = opts.idempotency_key
        if not self._idempotency.claim(channel, key, opts.idempotent_result_ttl):
            return PublishResult(StreamPosition(), suppressed=True, suppress_reason="idempotency")
        pub = new_publication(data, opts.client_info, opts.tags)
        pub.delta = opts.use_delta
        try:
            await self._send(channel, _PUBLICATION, pub.SerializeToString())
        except EngineError:
            self._idempotency.release(channel, key)
            raise
        return PublishResult(StreamPosition())

    async def publish_join(self, channel: str, info: pb.ClientInfo) -> None:
        await self._send(channel, _JOIN, info.SerializeToString())

    async def publish_leave(self, channel: str, info: pb.ClientInfo) -> None:
        await self._send(channel, _LEAVE, info.SerializeToString())

    async def history(self, channel: str, query: HistoryQuery) -> HistoryResult:
        raise EngineError("history not supported")

    async def remove_history(self, channel: str) -> None:
        raise EngineError("history not supported")

    async def flush(self) -> None:
        """Waits for a round trip to NATS and for what arrived before it to reach the handler.

        Afterwards, everything this node published earlier has been delivered to its own
        subscriptions; useful before shutdown and in tests.
        """
        await self._connection.round_trip()
        while any(subscription.pending_msgs for subscription in self._subscriptions.values()):
            await asyncio.sleep(0)

    def _interrupted(self) -> None:
        """NATS keeps nothing for a subscriber that is away: whatever was published to a channel
        from the moment the connection broke until it is subscribed again is gone, unseen."""
        if self._handler is not None and self._subscriptions:
            self._handler.handle_interrupted(list(self._subscriptions))

    async def _subscribe_one(self, channel: str) -> bool:
        """Subscribes unless a concurrent call got there first; says whether this call did."""
        client = self._connection.require()
        if self._handler is None:
            raise EngineError("nats broker: not started")
        subject = channel_subject(self._options.prefix, channel)
        receive = functools.partial(_receive, self._handler, channel)
        with as_engine_error(f"subscribe {subject}"):
            subscription = await client.subscribe(subject, cb=receive)
        if channel in self._subscriptions:
            await subscription.unsubscribe()
            return False
        self._subscriptions[channel] = subscription
        return True

    async def _send(self, channel: str, kind: bytes, body: bytes) -> None:
        client = self._connection.require()
        subject = channel_subject(self._options.prefix, channel)
        with as_engine_error(f"publish to {subject}"):
            await client.publish(subject, kind + body)


class _IdempotencyKeys:
    """(channel, key) pairs published recently, each until its own deadline.

    Lapsed pairs are dropped in a full pass whenever the dict doubled since the last one, which
    keeps the cost per publish constant on average without a timer.
    """

    def __init__(self) -> None:
        self._deadlines: dict[tuple[str, str], float] = {}
        self._prune_at = 64

    def claim(self, channel: str, key: str, ttl: float) -> bool:
        """Remembers the pair unless it is remembered already; an empty key is never remembered.

        Claiming before the publish goes out keeps two concurrent publishes with one key from
        both going out.
        """
        if not key:
            return True
        now = time.monotonic()
        deadline = self._deadlines.get((channel, key))
        if deadline is not None and deadline > now:
            return False
        self._deadlines[(channel, key)] = now + (ttl if ttl > 0 else DEFAULT_IDEMPOTENT_RESULT_TTL)
        if len(self._deadlines) >= self._prune_at:
            self._deadlines = {pair: at for pair, at in self._deadlines.items() if at > now}
            self._prune_at = max(64, 2 * len(self._deadlines))
        return True

    def release(self, channel: str, key: str) -> None:
        """Forgets a claim whose publish failed, so a retry can go out."""
        self._deadlines.pop((channel, key), None)
