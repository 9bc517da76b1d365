"""A compact JWS split into its parts before anything in it is trusted.

Claims are read before the signature is checked because the issuer and audience may choose the
JWKS endpoint (https://centrifugal.dev/docs/server/authentication#dynamic-jwks-endpoint); nothing
read here is acted on until a key set has verified the signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from rotary.server.tokens.claims import Claims, TokenError

_PARSER = jwt.PyJWS()


@dataclass(frozen=True, slots=True)
class SignedToken:
    alg: str
    kid: str
    signing_input: bytes
    signature: bytes
    claims: Claims


def parse_token(token: str) -> SignedToken:
    try:
        parts = _PARSER.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    header = parts["header"]
    alg = header.get("alg", "")
    if not isinstance(alg, str):
        raise TokenError("invalid token: header 'alg' must be a string")
    claims = Claims(parts["payload"])
    claims.check_registered()
    return SignedToken(
        alg=alg,
        kid=header.get("kid", ""),
        signing_input=token.encode().rpartition(b".")[0],
        signature=parts["signature"],
        claims=claims,
    )
