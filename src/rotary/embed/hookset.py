"""The Python hooks an application registers on a Node, and their defaults when it does not.

Defaults follow Centrifugo without proxies (https://centrifugal.dev/docs/server/proxy): a client
without credentials is refused, and only what the application allows is allowed. ``insecure=True``
is Centrifugo's ``client.insecure``: anything a hook does not forbid is allowed.

=============== =================================================================================
hook            when the application defines none
=============== =================================================================================
on_connecting   disconnect 3501 (bad request); with ``insecure`` an anonymous connection (user "")
on_connect      nothing
on_subscribe    error 103 (permission denied); with ``insecure`` the subscription is granted
on_publish      error 103; with ``insecure`` published as sent
on_rpc          error 104 (method not found)
on_refresh      the connection ends at its ``expire_at`` (3005)
on_sub_refresh  the subscription ends at its ``expire_at`` (unsubscribe 2501)
on_presence     allowed to the channel's subscribers (error 103 to others), when the channel has
                presence on (else error 108, hook or not)
on_history      as on_presence, when the channel keeps history (else error 108, hook or not)
on_disconnect   nothing
=============== =================================================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rotary.embed.events import (
    ConnectEvent,
    ConnectingEvent,
    ConnectReply,
    DisconnectEvent,
    HistoryEvent,
    PresenceEvent,
    PublishEvent,
    PublishReply,
    RefreshEvent,
    RefreshReply,
    RPCEvent,
    SubRefreshEvent,
    SubRefreshReply,
    SubscribeEvent,
    SubscribeReply,
)

ConnectingHook = Callable[[ConnectingEvent], Awaitable[ConnectReply]]
ConnectHook = Callable[[ConnectEvent], Awaitable[None]]
SubscribeHook = Callable[[SubscribeEvent], Awaitable[SubscribeReply | None]]
PublishHook = Callable[[PublishEvent], Awaitable[PublishReply | None]]
RPCHook = Callable[[RPCEvent], Awaitable[object]]
RefreshHook = Callable[[RefreshEvent], Awaitable[RefreshReply]]
SubRefreshHook = Callable[[SubRefreshEvent], Awaitable[SubRefreshReply]]
PresenceHook = Callable[[PresenceEvent], Awaitable[None]]
HistoryHook = Callable[[HistoryEvent], Awaitable[None]]
DisconnectHook = Callable[[DisconnectEvent], Awaitable[None]]


@dataclass(slots=True)
class HookSet:
    """The hooks registered so far; None where the default applies."""

    connecting: ConnectingHook | None = None
    connect: ConnectHook | None = None
    subscribe: SubscribeHook | None = None
    publish: PublishHook | None = None
    rpc: RPCHook | None = None
    refresh: RefreshHook | None = None
    sub_refresh: SubRefreshHook | None = None
    presence: PresenceHook | None = None
    history: HistoryHook | None = None
    disconnect: DisconnectHook | None = None
