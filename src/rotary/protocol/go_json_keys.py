"""How Centrifugo's two Go JSON decoders match an object's keys to field names.

Both try the exact name first and then compare case-insensitively, but they fold case differently,
and a client can tell: a key matches a field in one and not the other. Centrifugo decodes its HTTP
server API with Go's ``encoding/json`` and the client protocol (commands, and the connect request
of the unidirectional transports) with ``github.com/segmentio/encoding/json``
(https://centrifugal.dev/docs/server/server_api, https://centrifugal.dev/docs/transports/client_protocol).
rotary's field names are lower-case ASCII, so each rule below only has to decide which keys fold
to such a name; the only non-ASCII runes whose Unicode case orbit holds an ASCII letter are the
long s (U+017F, with s) and the Kelvin sign (U+212A, with k). The differential tests compare both
servers on such keys (tests/differential/test_http_api.py, test_client.py).
"""

from __future__ import annotations

import string
from typing import Final

LONG_S: Final = "\u017f"
KELVIN: Final = "\u212a"


def fold_encoding_json(key: str) -> str:
    """``encoding/json``: every rune folds to the smallest of its case orbit, so the long s is an
    ``s`` and the Kelvin sign a ``k`` (``str.lower`` already lowers the Kelvin sign to ``k``)."""
    return key.lower().replace(LONG_S, "s")


_SEGMENTIO_NON_ASCII: Final = {ord(c): c.lower() for c in string.ascii_uppercase} | {
    ord("k"): KELVIN,
    ord("s"): LONG_S,
    ord(LONG_S): "s",
    ord(KELVIN): "k",
}
"""segmentio's folding of a key with a non-ASCII rune in it: each rune becomes the next one of its
case orbit (Go's ``unicode.SimpleFold``), lowered when that is an ASCII capital. So ``A`` gives
``a`` and ``a`` gives ``A`` then ``a`` again, but ``k`` gives the Kelvin sign and ``s`` the long s,
which match no field; the Kelvin sign gives ``K`` then ``k``, the long s ``S`` then ``s``. Other
non-ASCII runes stay non-ASCII and match nothing, so they are left as they are."""


def fold_segmentio(key: str) -> str:
    """``segmentio/encoding/json``: an ASCII key is lowered; see ``_SEGMENTIO_NON_ASCII`` for the
    others."""
    if key.isascii():
        return key.lower()
    return key.translate(_SEGMENTIO_NON_ASCII)
