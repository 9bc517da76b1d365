"""Serving a :class:`rotary.Node`'s connections inside a host application: public API.

``asgi_app(node)`` is a plain ASGI 3 app for Starlette, FastAPI, Django or any ASGI host
(``app.mount("/rotary", asgi_app(node))``); ``aiohttp_app(node)`` is an aiohttp sub-application
(``app.add_subapp("/rotary", aiohttp_app(node))``). Both serve Centrifugo's connection endpoints
under the host's prefix (https://centrifugal.dev/docs/transports/overview): the bidirectional
WebSocket at ``/connection/websocket``, HTTP streaming at ``/connection/http_stream``, SSE at
``/connection/sse`` and the emulation endpoint at ``/emulation``. Hooks see the host's request in
``ConnectingEvent.request`` (the ASGI scope, the aiohttp ``web.Request``), so ``on_connecting``
reuses the host's own login. The host starts and stops the node. Guides: docs/fastapi.md and
docs/aiohttp.md.
"""

from rotary.transports.mounts.aiohttp_mount import aiohttp_app
from rotary.transports.mounts.asgi import asgi_app

__all__ = ["aiohttp_app", "asgi_app"]
