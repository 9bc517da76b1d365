"""The rotary node of the example and its hooks: Django's session decides who connects.

The ASGI scope of a connection carries the browser's cookies; ``on_connecting`` loads the Django
session they name (signed cookies: no database, no thread needed) and connects its user. Channels
keep 100 publications for 5 minutes, so a client that reconnects recovers what it missed.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from importlib import import_module

from django.conf import settings

import rotary
from rotary import ChannelOptions, ConnectReply, Node

LOGIN_REQUIRED = 4503
"""The disconnect code of a connection without a Django login (the SDK does not reconnect)."""


def django_user(scope: object) -> str | None:
    """The user of the Django session named by the scope's cookies, or None."""
    if not isinstance(scope, dict):
        return None
    cookies = SimpleCookie()
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookies.load(value.decode("latin-1"))
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=morsel.value)
    user = store.get("user")
    return user if isinstance(user, str) else None


node = Node(channel_options=ChannelOptions(history_size=100, history_ttl=300, force_recovery=True))


@node.on_connecting
async def connecting(event: rotary.ConnectingEvent) -> ConnectReply:
    user = django_user(event.request)
    if user is None:
        raise rotary.Disconnect(LOGIN_REQUIRED, "login required")
    return ConnectReply(user=user)


@node.on_subscribe
async def subscribe(event: rotary.SubscribeEvent) -> None:
    """Every logged-in user may read every channel."""


@node.on_publish
async def publish(event: rotary.PublishEvent) -> None:
    """Published as sent, with the publisher's info (kept in history with it)."""
