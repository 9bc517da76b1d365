"""The admin web UI and the admin API behind it, as Centrifugo serves them.

``routes.py`` adds ``<admin.handler_prefix>/admin/{init,auth,api}`` and the UI's files
(``files.py``: the built-in UI in ``static/``, or ``admin.web_path``); ``token.py`` signs and checks
the admin token. The admin API runs the legacy API format through the HTTP API's own executor, so
an admin action is an API call like any other, and the API key never reaches the browser.
See https://centrifugal.dev/docs/server/admin_web.
"""

from rotary.server.admin.routes import register_admin

__all__ = ["register_admin"]
