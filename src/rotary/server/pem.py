"""PEM settings as Centrifugo spells them: the PEM text itself, its base64, or a path to a file.

Token keys, TLS certificates, keys and CAs all take this one spelling, so they share one reader.
See https://centrifugal.dev/docs/server/tls and https://centrifugal.dev/docs/server/authentication
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path


class PemError(ValueError):
    """A PEM setting that is neither PEM text, base64-encoded PEM nor a readable file."""


def read_pem(value: str) -> bytes:
    """The PEM bytes a setting holds, reading the file when the setting is a path."""
    if "-----BEGIN" in value:
        return value.encode()
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if b"-----BEGIN" in decoded:
        return decoded
    path = Path(value)
    if path.is_file():
        try:
            return path.read_bytes()
        except OSError as exc:
            raise PemError(f"cannot read PEM file: {exc}") from None
    raise PemError("not PEM text, base64-encoded PEM or a path to a PEM file")
