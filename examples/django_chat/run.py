"""Starts the Django chat example under uvicorn: ``python examples/django_chat/run.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")
    uvicorn.run(  # with the settings docs/fastapi.md gives for rotary
        "chat.asgi:application",
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        ws="websockets-sansio",
        ws_ping_interval=None,
        ws_per_message_deflate=False,
    )
