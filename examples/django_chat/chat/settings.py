"""Django settings of the chat example: sessions in signed cookies, so no database is needed."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(32)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.sessions"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
ROOT_URLCONF = "chat.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
CENTRIFUGE_JS = BASE_DIR.parents[2] / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"
