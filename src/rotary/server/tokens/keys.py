"""Keys configured in the file: an HMAC secret (plus the previous one during rotation), RSA and ECDSA.

Each configured key enables only its own algorithms, so ``alg: none`` and any algorithm with no key
are refused (https://centrifugal.dev/docs/server/authentication). The signature itself is checked by
PyJWT's algorithm objects on cryptography keys prepared once at startup; HMAC ones by the standard
library's ``hmac``, keyed once at startup and copied for each token (a copy skips the key schedule
and the digest lookup that even the one-shot ``hmac.digest`` repeats), the same check at a fraction
of PyJWT's cost on every connect.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

from rotary.server import pem
from rotary.server.tokens.claims import TokenError
from rotary.server.tokens.signed import SignedToken

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
ECDSA_ALGORITHMS = ("ES256", "ES384", "ES512")
SUPPORTED_ALGORITHMS = frozenset(HMAC_ALGORITHMS + RSA_ALGORITHMS + ECDSA_ALGORITHMS)

_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()


class TokenConfigError(ValueError):
    """A token setting cannot be used: unreadable key, conflicting options, unsafe JWKS template."""


def read_pem(value: str) -> bytes:
    """A key setting's PEM bytes (see rotary.server.pem), refused as a token setting."""
    try:
        return pem.read_pem(value)
    except pem.PemError as exc:
        raise TokenConfigError(f"key: {exc}") from None


def load_public_key(value: str, kind: str) -> Any:
    """A public key from a PEM public key or certificate; ``kind`` names it in errors."""
    pem = read_pem(value)
    try:
        return load_pem_public_key(pem)
    except ValueError:
        pass
    try:
        return x509.load_pem_x509_certificate(pem).public_key()
    except ValueError as exc:
        raise TokenConfigError(f"error parsing {kind} public key: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Verifier:
    algorithm: Algorithm
    key: Any

    def verify(self, token: SignedToken) -> bool:
        return bool(self.algorithm.verify(token.signing_input, self.key, token.signature))


def _prepared(names: tuple[str, ...], key: Any) -> dict[str, _Verifier]:
    """Verifiers for the algorithms this key fits (an EC key fits only its own curve's ES*)."""
    verifiers = {}
    for name in names:
        algorithm = _ALGORITHMS[name]
        try:
            verifiers[name] = _Verifier(algorithm, algorithm.prepare_key(key))
        except InvalidKeyError:
            continue
    return verifiers


class _Mac(Protocol):
    def copy(self) -> _Mac: ...

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _HmacVerifier:
    keyed: _Mac
    """An HMAC that has seen the key and nothing else; never updated itself, only copied."""

    def verify(self, token: SignedToken) -> bool:
        mac = self.keyed.copy()
        mac.update(token.signing_input)
        return hmac.compare_digest(mac.digest(), token.signature)


def _hmac(secret: str) -> dict[str, _Verifier | _HmacVerifier]:
    # HMAC secrets are used as given: PyJWT's prepare_key would refuse a secret that looks like PEM.
    key = secret.encode()
    return {name: _HmacVerifier(_keyed(key, f"sha{name[2:]}")) for name in HMAC_ALGORITHMS}


def _keyed(key: bytes, digest: str) -> _Mac:
    """An HMAC keyed with ``key``: OpenSSL's own object when ``hmac`` wraps one (the same copy,
    update and digest, without hmac.HMAC's Python layer on each, about 3k instructions per token)."""
    mac = hmac.new(key, digestmod=digest)
    inner: _Mac | None = getattr(mac, "_hmac", None)
    return mac if inner is None else inner


class Keyring:
    """Verifiers by algorithm name, built from one token config's static keys."""

    def __init__(self, hmac_secret: str = "", rsa_public_key: str = "", ecdsa_public_key: str = "") -> None:
        self._verifiers: dict[str, _Verifier | _HmacVerifier] = {}
        if hmac_secret:
            self._verifiers.update(_hmac(hmac_secret))
        if rsa_public_key:
            key = load_public_key(rsa_public_key, "RSA")
            if not isinstance(key, rsa.RSAPublicKey):
                raise TokenConfigError("error parsing RSA public key: key is not a valid RSA public key")
            self._verifiers.update(_prepared(RSA_ALGORITHMS, key))
        if ecdsa_public_key:
            key = load_public_key(ecdsa_public_key, "ECDSA")
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise TokenConfigError("error parsing ECDSA public key: key is not a valid ECDSA public key")
            self._verifiers.update(_prepared(ECDSA_ALGORITHMS, key))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self._verifiers)

    def verify(self, token: SignedToken) -> None:
        if token.alg not in SUPPORTED_ALGORITHMS:
            raise TokenError(f"invalid token: unsupported JWT algorithm: {token.alg}")
        verifier = self._verifiers.get(token.alg)
        if verifier is None:
            raise TokenError(f"invalid token: disabled JWT algorithm: {token.alg}")
        if not verifier.verify(token):
            raise TokenError("invalid token: signature is not valid")

    def accepts(self, token: SignedToken) -> bool:
        verifier = self._verifiers.get(token.alg)
        return verifier is not None and verifier.verify(token)


class StaticKeys:
    """The current keyring, falling back to the previous HMAC secret while it is still accepted."""

    def __init__(
        self, current: Keyring, previous: Keyring | None = None, previous_valid_until: int = 0
    ) -> None:
        self._current = current
        self._previous = previous
        self._previous_valid_until = previous_valid_until

    def verify(self, token: SignedToken, now: float) -> None:
        try:
            self._current.verify(token)
        except TokenError:
            if (
                self._previous is None
                or not self._previous_accepted(now)
                or not self._previous.accepts(token)
            ):
                raise

    def _previous_accepted(self, now: float) -> bool:
        return self._previous_valid_until <= 0 or int(now) <= self._previous_valid_until
