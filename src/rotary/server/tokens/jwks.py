"""Public keys from a JWKS endpoint, chosen by the token's ``kid``.

Follows https://centrifugal.dev/docs/server/authentication#json-web-key-support: keys of type RSA,
EC and OKP (Ed25519) with ``use: sig`` are kept for an hour, fetched with GET, a 1 second timeout and
one retry. The endpoint may be a template whose ``{{var}}`` placeholders are filled from named groups
of ``issuer_regex``/``audience_regex``. Those values come from claims read before the signature is
checked, so every such group must be a fixed list of alternatives, checked once at startup.
"""

from __future__ import annotations

import asyncio
import posixpath
import re

# The stdlib's own regex parser is the one reliable reader of a pattern's structure; its public
# aliases (sre_parse, sre_constants) are deprecated and warn on import, so the modules are named directly.
import re._constants as sre  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError, PyJWTError

from rotary.server.tokens.claims import TokenError
from rotary.server.tokens.keys import ECDSA_ALGORITHMS, RSA_ALGORITHMS, TokenConfigError
from rotary.server.tokens.signed import SignedToken

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_FAMILIES: dict[str, tuple[str, ...]] = {"RSA": RSA_ALGORITHMS, "EC": ECDSA_ALGORITHMS, "OKP": ("EdDSA",)}
_ALGORITHMS = get_default_algorithms()
_CLASS_SHORTHANDS = frozenset("dDwWsSpP")
_LITERAL_OPS = frozenset({sre.LITERAL, sre.SUBPATTERN, sre.BRANCH, sre.IN})


def _invalid(reason: str) -> TokenError:
    return TokenError(f"invalid token: {reason}")


def _reject_class_syntax(name: str, pattern: str) -> None:
    escaped = False
    for char in pattern:
        if escaped:
            if char in _CLASS_SHORTHANDS:
                raise TokenConfigError(
                    f"{name} contains character class shorthand (\\{char}) which is not allowed when JWKS "
                    "endpoint URL template is used — use an explicit list of allowed values "
                    "(e.g., value1|value2|value3)"
                )
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            raise TokenConfigError(
                f"{name} contains character class syntax which is not allowed when JWKS endpoint URL "
                "template is used — use an explicit list of allowed values (e.g., value1|value2|value3)"
            )


def _is_fixed(items: Any) -> bool:
    """True when a parsed pattern can match only a finite set of fixed strings."""
    for op, arg in items:
        if op not in _LITERAL_OPS:
            return False
        if op is sre.SUBPATTERN and not _is_fixed(arg[3]):
            return False
        if op is sre.BRANCH and not all(_is_fixed(branch) for branch in arg[1]):
            return False
        if op is sre.IN and any(member_op is not sre.LITERAL for member_op, _ in arg):
            return False
    return True


def _children(op: Any, arg: Any) -> list[Any]:
    if op is sre.SUBPATTERN:
        return [arg[3]]
    if op is sre.BRANCH:
        return list(arg[1])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return [arg[2]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [arg[1]]
    if op is sre.ATOMIC_GROUP:
        return [arg]
    if op is sre.GROUPREF_EXISTS:
        return [branch for branch in arg[1:] if branch is not None]
    return []


def _named_groups(items: Any, names: Mapping[int, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for op, arg in items:
        if op is sre.SUBPATTERN and arg[0] in names:
            found[names[arg[0]]] = arg[3]
        for child in _children(op, arg):
            found.update(_named_groups(child, names))
    return found


def check_endpoint_scheme(endpoint: str) -> None:
    if urlsplit(endpoint).scheme not in ("http", "https"):
        raise TokenConfigError(f"endpoint must have http:// or https:// scheme, got: {endpoint}")


def check_endpoint_safety(endpoint: str, issuer_regex: str, audience_regex: str) -> None:
    """Refuse a template whose placeholders could be filled with values an attacker chooses."""
    placeholders = set(_PLACEHOLDER.findall(endpoint))
    if not placeholders:
        return
    for name, pattern in (("issuer_regex", issuer_regex), ("audience_regex", audience_regex)):
        if not pattern:
            continue
        _reject_class_syntax(name, pattern)
        parsed = sre_parse.parse(pattern)
        names = {index: group for group, index in parsed.state.groupdict.items()}
        groups = _named_groups(parsed, names)
        for group in placeholders & parsed.state.groupdict.keys():
            if group not in groups or not _is_fixed(groups[group]):
                raise TokenConfigError(
                    f"{name} named group {group!r} is used in JWKS endpoint URL template — only an explicit "
                    "list of allowed values is permitted (e.g., value1|value2|value3)"
                )


@dataclass(frozen=True, slots=True)
class _Jwk:
    kty: str
    alg: str
    key: Any

    def verify(self, token: SignedToken) -> None:
        family = _FAMILIES.get(self.kty)
        if family is None:
            raise _invalid(f"unsupported JWT algorithm: key type {self.kty}")
        # "alg" is optional in a JWK (RFC 7517 section 4.4); without it the token's own alg must
        # belong to the key's family. Ed25519 keys verify EdDSA whatever the JWK says.
        expected = self.alg if self.alg and self.kty != "OKP" else token.alg
        if expected not in family or token.alg != expected:
            raise _invalid(f"unsupported JWT algorithm: {token.alg}")
        if self.kty == "OKP" and not isinstance(self.key, Ed25519PublicKey):
            raise _invalid("public key is invalid: only Ed25519 is supported for OKP keys")
        algorithm = _ALGORITHMS[expected]
        try:
            key = algorithm.prepare_key(self.key)
        except InvalidKeyError as exc:
            raise _invalid(f"public key is invalid: {exc}") from None
        if not algorithm.verify(token.signing_input, key, token.signature):
            raise _invalid("signature is not valid")


def _convert(spec: Mapping[str, Any]) -> _Jwk:
    kty = spec.get("kty", "")
    alg = spec.get("alg", "")
    if kty not in _FAMILIES:
        return _Jwk(str(kty), str(alg), None)
    algorithm = _ALGORITHMS[_FAMILIES[kty][0]]
    try:
        key = algorithm.from_jwk(dict(spec))
    except (PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise _invalid(f"jwks: convert error: {exc}") from None
    return _Jwk(kty, str(alg), key)


def _parse_set(body: bytes) -> dict[str, _Jwk]:
    """Signing keys of a JWK Set by kid; keys for other uses are ignored."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"jwks: unmarshal error: {exc}") from None
    specs = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(specs, list) or not specs:
        raise _invalid("jwks: public key not found")
    keys = {}
    for spec in specs:
        if not isinstance(spec, dict):
            raise _invalid("jwks: convert error: key is not an object")
        if spec.get("use") == "sig" and isinstance(spec.get("kid"), str):
            keys[spec["kid"]] = _convert(spec)
    return keys


class JwksKeys:
    """Fetches, caches and applies the keys of one (possibly templated) JWKS endpoint."""

    def __init__(
        self,
        endpoint: str,
        *,
        now: Callable[[], float],
        ttl: float = 3600.0,
        timeout: float = 1.0,
        attempts: int = 2,
    ) -> None:
        check_endpoint_scheme(endpoint)
        self._endpoint = endpoint
        self._now = now
        self._ttl = ttl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._attempts = attempts
        self._cache: dict[tuple[str, str], tuple[float, _Jwk]] = {}
        self._inflight: dict[str, asyncio.Task[dict[str, _Jwk]]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def verify(self, token: SignedToken, variables: Mapping[str, str]) -> None:
        if not token.kid:
            raise _invalid("jwks: kid is not provided")
        key = await self._key(self.resolve(variables), token.kid)
        key.verify(token)

    def resolve(self, variables: Mapping[str, str]) -> str:
        """The endpoint for this token; a path that normalizes differently is refused (traversal)."""
        url = _PLACEHOLDER.sub(lambda match: variables.get(match[1], ""), self._endpoint)
        path = urlsplit(url).path
        if path and posixpath.normpath(path) != path:
            raise _invalid(f"JWKS URL path contains traversal sequences: {path!r}")
        return url

    async def close(self) -> None:
        for task in self._inflight.values():
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _key(self, url: str, kid: str) -> _Jwk:
        cached = self._cache.get((url, kid))
        if cached is not None and cached[0] > self._now():
            return cached[1]
        keys = await self._fetch(url)
        key = keys.get(kid)
        if key is None:
            raise _invalid("jwks: public key not found")
        return key

    async def _fetch(self, url: str) -> dict[str, _Jwk]:
        """One request per endpoint at a time; concurrent verifications share its result."""
        task = self._inflight.get(url)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(url))
            self._inflight[url] = task
            task.add_done_callback(lambda done: self._forget(url, done))
        return await asyncio.shield(task)

    def _forget(self, url: str, task: asyncio.Task[dict[str, _Jwk]]) -> None:
        self._inflight.pop(url, None)
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not reported as lost

    async def _load(self, url: str) -> dict[str, _Jwk]:
        keys = _parse_set(await self._download(url))
        expires = self._now() + self._ttl
        for kid, key in keys.items():
            self._cache[(url, kid)] = (expires, key)
        return keys

    async def _download(self, url: str) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        failure = ""
        for _ in range(self._attempts):
            try:
                async with self._session.get(url) as response:
                    if response.status == 200:
                        return await response.read()
                    failure = f"jwks: unexpected status code: {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = f"jwks: {exc!r}"
        raise _invalid(failure)
