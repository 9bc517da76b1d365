"""The example's ASGI application: rotary's mount under /rt, Django for everything else.

Django's ASGI handler serves HTTP only, and has no lifespan: this dispatcher starts and stops the
node on the ASGI lifespan events itself.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")
django_app = get_asgi_application()

from chat.realtime import node  # noqa: E402
from rotary.mount import asgi_app  # noqa: E402 (after Django is set up)

PREFIX = "/rt/"
rotary_app = asgi_app(node)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["path"].startswith(PREFIX):
        await rotary_app(scope, receive, send)
    else:
        await django_app(scope, receive, send)


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await node.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await node.shutdown(5)
            await send({"type": "lifespan.shutdown.complete"})
            return
