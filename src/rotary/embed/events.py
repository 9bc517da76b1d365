"""What hooks receive (events) and return (replies), as plain dataclasses.

Each hook of :class:`rotary.Node` takes one event and returns a reply or None; the names follow
Centrifugo's proxies and the Go library's handlers (https://centrifugal.dev/docs/server/proxy,
https://pkg.go.dev/github.com/centrifugal/centrifuge). Data fields of events are decoded: the JSON
value a JSON-protocol client sent, the bytes a Protobuf-protocol client sent. Data fields of replies
are bytes sent as they are, or any other value encoded as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rotary.engines.base import StreamPosition

Protocol = Literal["json", "protobuf"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectingEvent:
    """A client sent its connect command: who is it? (``on_connecting``)."""

    client_id: str
    transport: str
    """Centrifugo's transport name: "websocket", "sse", "http_stream", "uni_websocket", ..."""
    protocol: Protocol
    headers: Mapping[str, str]
    """HTTP headers of the request that opened the connection, then those the client sent in its
    connect command (headers emulation), keys lower-cased; real headers win."""
    cookies: Mapping[str, str]
    """Cookies of the request that opened the connection."""
    remote: str
    """The peer's address, when known."""
    token: str
    """The token the client sent ("" for none); verifying it is up to the hook."""
    data: Any
    """Custom connect data of the client."""
    name: str
    """The client's name and version as its SDK reports them (unverified)."""
    version: str
    channels: tuple[str, ...]
    """Channels the client asks to be subscribed to at connect (server-side subscriptions it
    remembers from a previous connection); granting them is up to ``ConnectReply.channels``."""
    request: object | None = None
    """The host framework's request that opened the connection (an aiohttp ``web.Request``, an
    ASGI scope dict) when rotary is mounted into another application; None otherwise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientEvent:
    """A connected client, as every event after connect describes it."""

    client_id: str
    user: str
    transport: str
    protocol: Protocol
    headers: Mapping[str, str]
    """As in :class:`ConnectingEvent`."""
    info: bytes
    """The connection's info as ``ConnectReply.info`` (or a refresh) set it, encoded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectEvent(ClientEvent):
    """A client is connected (``on_connect``); its connect reply is sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectEvent(ClientEvent):
    """A connected client's connection ended (``on_disconnect``), for any reason."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeEvent(ClientEvent):
    """A client asks to subscribe to a channel (``on_subscribe``)."""

    channel: str
    token: str
    """A subscription token, if the client sent one ("" for none)."""
    data: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishEvent(ClientEvent):
    """A client publishes into a channel (``on_publish``)."""

    channel: str
    data: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class RPCEvent(ClientEvent):
    """A client calls a method (``on_rpc``)."""

    method: str
    data: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshEvent(ClientEvent):
    """A connection with an ``expire_at`` must be extended (``on_refresh``).

    ``client_side`` is False when rotary asks on its own at expiry (the default), True when the
    client sent a refresh command with a new ``token``."""

    client_side: bool
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubRefreshEvent(ClientEvent):
    """A subscription with an ``expire_at`` must be extended (``on_sub_refresh``)."""

    channel: str
    client_side: bool
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceEvent(ClientEvent):
    """A client asks who is in a channel, or how many (``on_presence``)."""

    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEvent(ClientEvent):
    """A client reads a channel's history (``on_history``)."""

    channel: str
    limit: int
    since: StreamPosition | None
    reverse: bool


@dataclass(slots=True, kw_only=True)
class SubscribeReply:
    """A granted subscription. Return None from ``on_subscribe`` for the plain one."""

    info: object = None
    """Channel info, shown in presence, join/leave and publications of this subscriber."""
    data: object = None
    """Sent to the subscriber with the subscribe result."""
    expire_at: int = 0
    """Unix seconds when the subscription ends unless ``on_sub_refresh`` extends it; 0 never."""
    client_side_refresh: bool = False
    """The client extends the subscription itself (sub_refresh with a new token) instead of rotary
    calling ``on_sub_refresh`` at expiry."""


@dataclass(slots=True, kw_only=True)
class ConnectReply:
    """Who the connection is and what it gets (``on_connecting``)."""

    user: str
    """The user's id; "" for an anonymous connection."""
    info: object = None
    """Connection info, shown to others in presence, join/leave and publications."""
    data: object = None
    """Sent to the client with the connect result."""
    expire_at: int = 0
    """Unix seconds when the connection ends unless ``on_refresh`` extends it; 0 never."""
    client_side_refresh: bool = False
    """The client refreshes itself (a refresh command with a new token) instead of rotary calling
    ``on_refresh`` at expiry."""
    channels: Mapping[str, SubscribeReply] | Iterable[str] = ()
    """Server-side subscriptions: channel names, or channels with their subscription's reply."""


@dataclass(slots=True, kw_only=True)
class PublishReply:
    """How a client's publication goes out. Return None from ``on_publish`` to publish it as sent."""

    data: object = None
    """Replacement data; None publishes what the client sent."""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class RefreshReply:
    """A connection's new expiry (``on_refresh``)."""

    expire_at: int = 0
    """New expiry in Unix seconds; 0 never expires."""
    expired: bool = False
    """End the connection now (3005)."""
    info: object = None
    """New connection info; None keeps the current one."""


@dataclass(slots=True, kw_only=True)
class SubRefreshReply:
    """A subscription's new expiry (``on_sub_refresh``)."""

    expire_at: int = 0
    expired: bool = False
    info: object = None
    """New channel info; None keeps the current one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelOptions:
    """What a channel does, as a Centrifugo namespace's options do. ``Node(channel_options=...)``
    takes one for every channel, or a function of the channel name."""

    presence: bool = False
    """Keep who is subscribed (presence and presence_stats work, else error 108)."""
    join_leave: bool = False
    """Send join/leave events to subscribers that ask for them."""
    force_push_join_leave: bool = False
    """Send join/leave events to every subscriber."""
    history_size: int = 0
    history_ttl: float = 0.0
    """Keep the last ``history_size`` publications for ``history_ttl`` seconds (both needed)."""
    history_meta_ttl: float = 0.0
    """How long the stream's position outlives its last publication; 0 the engine's default."""
    force_recovery: bool = False
    """Every subscription recovers missed publications after a reconnect (else only those whose
    client asks, when the channel keeps history)."""
    force_positioning: bool = False

    @property
    def history(self) -> bool:
        return self.history_size > 0 and self.history_ttl > 0
