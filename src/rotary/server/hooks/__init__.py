"""The Node hooks of the Centrifugo-compatible server, one module per concern.

``ServerHooks`` implements :class:`rotary.node.hooks.Hooks` by handing each hook to the part that
owns it: connect/refresh (``connect``), subscribe/sub_refresh (``subscribe``), publish, presence and
history (``channel_ops``), RPC (``rpc``); ``rotary.server.grants`` holds the permission rules they
share with the proxies and the server API.
"""

from __future__ import annotations

from rotary.server.grants import namespace_subscription
from rotary.server.hooks.server_hooks import ServerHooks

__all__ = ["ServerHooks", "namespace_subscription"]
