"""The admin token: what ``POST <prefix>/admin/auth`` hands out and every admin API call presents.

Centrifugo signs it with gorilla/securecookie keyed by ``admin.secret`` (HMAC-SHA256, no
encryption), under the name "token" and holding the Go-gob encoding of the string "authorized".
rotary writes the same bytes, so a token from one server works on the other when they share the
secret, and a token lives as long: 30 days from its timestamp, securecookie's default.
Layout: base64url("<unix seconds>|" + base64url(gob) + "|" + HMAC("token|<seconds>|<b64 gob>")).
See https://centrifugal.dev/docs/server/admin_web.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Final

NAME: Final = b"token"
VALUE: Final = bytes.fromhex("0d0c000a") + b"authorized"
"""Go's gob stream of the string "authorized": length 13, type id 6 (string), delta 0, length 10."""

MAX_AGE: Final = 86400 * 30
"""Seconds a token stays valid after it was issued (securecookie's default maxAge)."""

MAX_LENGTH: Final = 4096
"""Longest token securecookie decodes."""

_BASE64URL: Final = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


def _encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data)


def _decode(data: bytes) -> bytes | None:
    """Go's strict padded base64url; None for anything else (a '+' or '/' included)."""
    if len(data) % 4 or not _BASE64URL.fullmatch(data):
        return None
    try:
        return base64.urlsafe_b64decode(data)
    except binascii.Error:
        return None


def _mac(secret: str, signed: bytes) -> bytes:
    return hmac.new(secret.encode(), signed, hashlib.sha256).digest()


def issue(secret: str, now: int) -> str:
    """A token signed with ``secret`` at unix second ``now``."""
    body = b"%d|%s" % (now, _encode(VALUE))
    return _encode(body + b"|" + _mac(secret, NAME + b"|" + body)).decode()


def valid(secret: str, token: str, now: int) -> bool:
    """Whether ``token`` was signed with ``secret`` within MAX_AGE seconds before ``now``."""
    if not secret or len(token) > MAX_LENGTH:
        return False
    decoded = _decode(token.encode("utf-8", "surrogateescape"))
    if decoded is None:
        return False
    parts = decoded.split(b"|", 2)
    if len(parts) != 3:
        return False
    stamp, value, mac = parts
    if not hmac.compare_digest(mac, _mac(secret, NAME + b"|" + stamp + b"|" + value)):
        return False
    if not stamp.lstrip(b"-").isdigit() or int(stamp) < now - MAX_AGE:
        return False
    return _decode(value) == VALUE
