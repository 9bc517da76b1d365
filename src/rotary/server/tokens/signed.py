"""A compact JWS split into its parts before anything in it is trusted.

Claims are read before the signature is checked because the issuer and audience may choose the
JWKS endpoint (https://centrifugal.dev/docs/server/authentication#dynamic-jwks-endpoint); nothing
read here is acted on until a key set has verified the signature.
"""

from __future__ import annotations

import binascii
import functools
from dataclasses import dataclass
from typing import Any, Final

from rotary.protocol import json_depth
from rotary.server.tokens.claims import Claims, TokenError


@dataclass(slots=True)
class SignedToken:
    """Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, about a
    microsecond per connect (issue 15); nothing changes a token once it is parsed."""

    alg: str
    kid: str
    signing_input: bytes
    signature: bytes
    claims: Claims


def parse_token(token: str) -> SignedToken:
    """The parts of ``header.payload.signature``. The header is JSON read as Centrifugo's Go decoder
    reads it (10000 levels at most), never by a recursive parser."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("invalid token: not three segments")
    header, payload, signature = parts
    alg, kid = _alg_and_kid(header)
    claims = Claims(_base64url(payload, "payload"))
    claims.check_registered()
    signing_input = token[: len(header) + 1 + len(payload)].encode()
    return SignedToken(alg, kid, signing_input, _base64url(signature, "signature"), claims)


def _alg_and_kid(segment: str) -> tuple[str, str]:
    """The header's ``alg`` and ``kid``. An issuer signs every token with the same header, so its
    few distinct segments are decoded once (failures are not kept: they raise every time); a
    header longer than any real one is read each time rather than kept."""
    if len(segment) > _CACHED_HEADER_SIZE:
        return _read_alg_and_kid(segment)
    return _cached_alg_and_kid(segment)


_CACHED_HEADER_SIZE = 512


def _read_alg_and_kid(segment: str) -> tuple[str, str]:
    header = _header(_base64url(segment, "header"))
    alg, kid = header.get("alg", ""), header.get("kid", "")
    if not isinstance(alg, str) or not isinstance(kid, str):
        raise TokenError("invalid token: header 'alg' and 'kid' must be strings")
    return alg, kid


_cached_alg_and_kid = functools.lru_cache(maxsize=64)(_read_alg_and_kid)


_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")


def _base64url(segment: str, name: str) -> bytes:
    """``base64.urlsafe_b64decode`` of the padded segment, spelled as that function does it (the
    alphabet translated, then ``binascii.a2b_base64``, not strict) without its two Python layers."""
    try:
        padded = segment.encode("ascii") + b"=" * (-len(segment) % 4)
        return binascii.a2b_base64(padded.translate(_URLSAFE))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise TokenError(f"invalid token: {name} is not base64url") from None


def _header(raw: bytes) -> dict[str, Any]:
    try:
        header = json_depth.loads(raw, json_depth.GO_MAX_DEPTH)
    except (json_depth.InvalidJson, json_depth.JsonDepthError) as exc:
        raise TokenError(f"invalid token: header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise TokenError("invalid token: header is not a JSON object")
    return header
