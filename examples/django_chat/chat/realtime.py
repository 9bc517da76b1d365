"""The rotary node of the example and its hooks: Django's session decides who connects.

The ASGI scope of a connection carries the browser's cookies; ``on_connecting`` loads the Django
session they name (signed cookies: no database, no thread needed) and connects its user. Channels
keep 100 publications for 5 minutes, so a client that reconnects recovers what it missed.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from importlib import import_module

from django.conf import settings

from rotary.engines.base import PublishOptions
from rotary.node.default_hooks import AllowAllHooks
from rotary.node.errors import DisconnectError
from rotary.node.hooks import ClientView, ConnectDecision, ConnectionInfo, PublishDecision, SubscribeOptions
from rotary.node.node import Node
from rotary.protocol import codes, pb

LOGIN_REQUIRED = codes.Disconnect(4503, "login required")


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


class DjangoSessionHooks(AllowAllHooks):
    async def on_connecting(self, conn: ConnectionInfo, request: pb.ConnectRequest) -> ConnectDecision:
        user = django_user(conn.request)
        if user is None:
            raise DisconnectError(LOGIN_REQUIRED)
        return ConnectDecision(user=user)

    async def on_subscribe(self, client: ClientView, request: pb.SubscribeRequest) -> SubscribeOptions:
        return SubscribeOptions(recoverable=True, positioned=True)

    async def on_publish(self, client: ClientView, request: pb.PublishRequest) -> PublishDecision:
        info = pb.ClientInfo(user=client.user, client=client.id)
        return PublishDecision(
            request.data, PublishOptions(history_size=100, history_ttl=300, client_info=info)
        )


node = Node(hooks=DjangoSessionHooks())
