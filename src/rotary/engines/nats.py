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
import contextlib
import functools
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client
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
)
from rotary.protocol import pb

__all__ = ["NatsBroker", "NatsBrokerSettings", "NatsController", "NatsOptions", "channel_subject"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-:/@=+,;!~#$&]")
"""Characters left as they are in a subject token; everything else (the escape ``%`` too) is escaped."""

_FAILURES = (nats.errors.Error, OSError, asyncio.TimeoutError)

_DEFAULT_IDEMPOTENT_RESULT_TTL = 300.0
"""Centrifugo remembers an idempotency key for 5 minutes when the publish names no TTL."""


def _escape(name: str) -> str:
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), name)


def channel_subject(prefix: str, channel: str) -> str:
    """The subject a channel travels on: one token per channel, so no two channels share a subject."""
    return f"{prefix}.client.{_escape(channel)}"


class _TlsSettings(Protocol):
    @property
    def enabled(self) -> bool: ...


class _RawModeSettings(Protocol):
    @property
    def enabled(self) -> bool: ...


class NatsBrokerSettings(Protocol):
    """The ``broker.nats`` config section, as far as this broker reads it."""

    @property
    def url(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def dial_timeout(self) -> float: ...
    @property
    def write_timeout(self) -> float: ...
    @property
    def allow_wildcards(self) -> bool: ...
    @property
    def tls(self) -> _TlsSettings: ...
    @property
    def raw_mode(self) -> _RawModeSettings: ...


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """How to reach NATS. Defaults are Centrifugo's ``broker.nats`` defaults.

    ``dial_timeout`` bounds the first connection, retried until then; ``write_timeout`` bounds a flush of a
    full outgoing buffer and a round trip. After a lost connection the client retries forever,
    waiting from ``reconnect_min_delay`` up to ``reconnect_max_delay`` (doubling, with jitter).
    """

    url: str = "nats://localhost:4222"
    prefix: str = "centrifugo"
    dial_timeout: float = 1.0
    write_timeout: float = 1.0
    tls: ssl.SSLContext | None = None
    name: str = "rotary"
    reconnect_min_delay: float = 0.05
    reconnect_max_delay: float = 5.0

    @classmethod
    def from_config(cls, config: NatsBrokerSettings, *, tls: ssl.SSLContext | None = None) -> NatsOptions:
        """Options from ``broker.nats``; the caller builds ``tls`` from ``broker.nats.tls`` when enabled.

        Raises ValueError for what this broker does not implement, rather than run differently
        from what the config asks.
        """
        if config.raw_mode.enabled:
            raise ValueError("broker.nats.raw_mode is not supported")
        if config.allow_wildcards:
            raise ValueError("broker.nats.allow_wildcards is not supported")
        if config.tls.enabled and tls is None:
            raise ValueError("broker.nats.tls is enabled: pass the SSL context built from it")
        return cls(
            url=config.url,
            prefix=config.prefix,
            dial_timeout=config.dial_timeout,
            write_timeout=config.write_timeout,
            tls=tls,
        )


@contextlib.contextmanager
def _as_engine_error(doing: str) -> Iterator[None]:
    try:
        yield
    except _FAILURES as exc:
        raise EngineError(f"nats: {doing}: {exc!r}") from exc


class _Connection:
    """One nats-py client as brokers need it: retry forever once up, fail fast while down.

    nats-py would buffer publishes during a reconnect and deliver them late; both users here
    prefer an immediate EngineError, as Centrifugo's NATS broker gets by disabling that buffer.
    """

    def __init__(self, options: NatsOptions, role: str) -> None:
        self._options = options
        self._role = role
        self._client: Client | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def open(self) -> None:
        if self._client is not None:
            return
        client = Client()
        try:
            # Told to reconnect forever, nats-py would retry the first connection forever as well.
            async with asyncio.timeout(self._options.dial_timeout):
                await client.connect(**self._connect_options())
        except BaseException as exc:
            await client.close()
            if isinstance(exc, _FAILURES):
                raise EngineError(f"nats: cannot connect to {self._options.url}: {exc!r}") from exc
            raise
        self._client = client

    def require(self) -> Client:
        """The client, if it can take a command right now."""
        client = self._client
        if client is None or client.is_closed:
            raise EngineError(f"nats {self._role}: not started")
        if not client.is_connected:
            raise EngineError(f"nats {self._role}: disconnected from {self._options.url}")
        return client

    async def round_trip(self) -> None:
        """Returns once NATS has processed every command this client sent before the call."""
        client = self.require()
        with _as_engine_error("round trip"):
            # nats-py writes its PING straight to the socket, ahead of commands still queued for
            # its flusher task; only a PING sent with nothing queued proves everything arrived.
            while True:
                nothing_queued = client.pending_data_size == 0
                await client.flush(timeout=self._options.write_timeout)  # type: ignore[arg-type]
                if nothing_queued:
                    return

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _connect_options(self) -> dict[str, Any]:
        return {
            "servers": [self._options.url],
            "name": f"{self._options.name} {self._role}",
            "connect_timeout": self._options.dial_timeout,
            "flush_timeout": self._options.write_timeout,
            "tls": self._options.tls,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": self._options.reconnect_min_delay,
            "reconnect_to_server_handler": self._next_attempt,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
        }

    def _next_attempt(self, servers: list[Any], _info: dict[str, Any]) -> tuple[None, float]:
        """nats-py waits a fixed time between attempts; this doubles it up to a ceiling instead."""
        failures = min(servers[0].reconnects if servers else 0, 30)
        delay = min(self._options.reconnect_max_delay, self._options.reconnect_min_delay * 2**failures)
        return None, delay * random.uniform(0.5, 1.0)

    async def _on_error(self, error: Exception) -> None:
        # Failed attempts of the first connection end up in open()'s EngineError anyway.
        level = logging.WARNING if self._client is not None else logging.DEBUG
        log.log(level, "nats %s: %r", self._role, error)

    async def _on_disconnected(self) -> None:
        if self._client is not None and not self._client.is_closed:
            log.warning("nats %s: disconnected from %s, reconnecting", self._role, self._options.url)

    async def _on_reconnected(self) -> None:
        log.info("nats %s: reconnected to %s", self._role, self._options.url)


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
    what was published while disconnected is lost, as NATS promises nothing more. Idempotency
    keys are remembered by this node only.
    """

    supports_history = False

    def __init__(self, options: NatsOptions | None = None) -> None:
        self._options = options or NatsOptions()
        self._connection = _Connection(self._options, "broker")
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
                with _as_engine_error(f"unsubscribe {channel!r}"):
                    await subscription.unsubscribe()

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        key = opts.idempotency_key
        if not self._idempotency.claim(channel, key, opts.idempotent_result_ttl):
            return PublishResult(StreamPosition(), suppressed=True)
        pub = pb.Publication(
            data=data, info=opts.client_info, tags=opts.tags, time=time.time_ns() // 1_000_000
        )
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

    async def _subscribe_one(self, channel: str) -> bool:
        """Subscribes unless a concurrent call got there first; says whether this call did."""
        client = self._connection.require()
        if self._handler is None:
            raise EngineError("nats broker: not started")
        subject = channel_subject(self._options.prefix, channel)
        receive = functools.partial(_receive, self._handler, channel)
        with _as_engine_error(f"subscribe {subject}"):
            subscription = await client.subscribe(subject, cb=receive)
        if channel in self._subscriptions:
            await subscription.unsubscribe()
            return False
        self._subscriptions[channel] = subscription
        return True

    async def _send(self, channel: str, kind: bytes, body: bytes) -> None:
        client = self._connection.require()
        subject = channel_subject(self._options.prefix, channel)
        with _as_engine_error(f"publish to {subject}"):
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
        self._deadlines[(channel, key)] = now + (ttl if ttl > 0 else _DEFAULT_IDEMPOTENT_RESULT_TTL)
        if len(self._deadlines) >= self._prune_at:
            self._deadlines = {pair: at for pair, at in self._deadlines.items() if at > now}
            self._prune_at = max(64, 2 * len(self._deadlines))
        return True

    def release(self, channel: str, key: str) -> None:
        """Forgets a claim whose publish failed, so a retry can go out."""
        self._deadlines.pop((channel, key), None)


class NatsController:
    """Controller over NATS: ``<prefix>.control`` reaches every node, ``<prefix>.node.<id>`` one node.

    Every node subscribes to both, so its own broadcasts come back to it as the contract says.
    """

    def __init__(self, node_id: str, options: NatsOptions | None = None) -> None:
        self.node_id = node_id
        self._options = options or NatsOptions()
        self._connection = _Connection(self._options, "controller")
        self._started = False

    @classmethod
    def from_config(
        cls, node_id: str, config: NatsBrokerSettings, *, tls: ssl.SSLContext | None = None
    ) -> NatsController:
        return cls(node_id, NatsOptions.from_config(config, tls=tls))

    @property
    def connected(self) -> bool:
        return self._connection.connected

    async def start(self, handler: Callable[[bytes], None]) -> None:
        if self._started:
            return
        await self._connection.open()
        client = self._connection.require()

        async def receive(msg: Msg) -> None:
            handler(msg.data)

        with _as_engine_error("subscribe to control subjects"):
            await client.subscribe(self._all_subject, cb=receive)
            await client.subscribe(self._node_subject(self.node_id), cb=receive)
        await self._connection.round_trip()
        self._started = True

    async def publish_control(self, data: bytes, to_node: str = "") -> None:
        client = self._connection.require()
        subject = self._node_subject(to_node) if to_node else self._all_subject
        with _as_engine_error(f"publish to {subject}"):
            await client.publish(subject, data)

    async def close(self) -> None:
        self._started = False
        await self._connection.close()

    @property
    def _all_subject(self) -> str:
        return f"{self._options.prefix}.control"

    def _node_subject(self, node_id: str) -> str:
        return f"{self._options.prefix}.node.{_escape(node_id)}"
