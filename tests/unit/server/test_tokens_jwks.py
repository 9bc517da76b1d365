"""JWT verification with keys from a JWKS endpoint served by a real aiohttp server on a free port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from rotary.server.config.schema import SubscriptionTokenConfig, TokenConfig
from rotary.server.tokens import TokenConfigError, TokenError, TokenVerifier


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class JwksServer:
    """Serves a JWK Set per path and counts the requests it answers."""

    server: TestServer
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    status: int = 200

    def url(self, path: str) -> str:
        # Built by hand: yarl would percent-encode the braces of a {{var}} template.
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    async def handle(request: web.Request) -> web.Response:
        state.requests.append(request.path)
        if state.status != 200:
            return web.Response(status=state.status)
        return web.json_response({"keys": state.keys.get(request.path, [])})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state = JwksServer(server)
    yield state
    await server.close()


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    return {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig", **extra}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    return {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


def okp_jwk(key: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey, kid: str) -> dict[str, Any]:
    return {**json.loads(OKPAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_verifier(endpoint: str, clock: Clock | None = None, **token: Any) -> TokenVerifier:
    config = TokenConfig(
        jwks_public_endpoint=endpoint, hmac_secret_key="hmac-key-ignored-when-jwks-is-configured", **token
    )
    return TokenVerifier(config, SubscriptionTokenConfig(), now=clock or Clock())


def sign(key: Any, algorithm: str, kid: str | None, claims: dict[str, Any] | None = None) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims or {"sub": "u"}, key, algorithm=algorithm, headers=headers)


async def test_kid_selects_rsa_key(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.keys["/certs"] = [rsa_jwk(other, "old"), rsa_jwk(rsa_key, "new")]
    verifier = make_verifier(jwks.url("/certs"))
    try:
        for algorithm in ("RS256", "RS384", "RS512"):
            token = await verifier.verify_connect_token(sign(rsa_key, algorithm, "new", {"sub": algorithm}))
            assert token.user == algorithm
        with pytest.raises(TokenError, match="signature"):
            await verifier.verify_connect_token(sign(rsa_key, "RS256", "old"))
    finally:
        await verifier.close()


@pytest.mark.parametrize(
    ("algorithm", "curve"), [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())]
)
async def test_ec_key(jwks: JwksServer, algorithm: str, curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    jwks.keys["/certs"] = [ec_jwk(key, "ec")]
    verifier = make_verifier(jwks.url("/certs"))
    try:
        assert (await verifier.verify_connect_token(sign(key, algorithm, "ec"))).user == "u"
    finally:
        await verifier.close()


async def test_okp_ed25519_key(jwks: JwksServer) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    jwks.keys["/certs"] = [okp_jwk(key, "ed")]
    verifier = make_verifier(jwks.url("/certs"))
    try:
        assert (await verifier.verify_connect_token(sign(key, "EdDSA", "ed"))).user == "u"
        assert (
            await verifier.verify_subscription_token(sign(key, "EdDSA", "ed", {"channel": "$c"}))
        ).channel == "$c"
    finally:
        await verifier.close()


async def test_keys_are_cached_for_an_hour(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks.keys["/certs"] = [rsa_jwk(rsa_key, "k")]
    clock = Clock()
    verifier = make_verifier(jwks.url("/certs"), clock)
    token = sign(rsa_key, "RS256", "k")
    try:
        await verifier.verify_connect_token(token)
        await verifier.verify_connect_token(token)
        assert jwks.requests == ["/certs"]
        clock.now += 3601
        await verifier.verify_connect_token(
            jwt.encode({"sub": "u", "exp": clock.now + 10}, rsa_key, "RS256", {"kid": "k"})
        )
        assert jwks.requests == ["/certs", "/certs"]
    finally:
        await verifier.close()


async def test_unknown_kid_is_invalid_and_refetched(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks.keys["/certs"] = [rsa_jwk(rsa_key, "k")]
    verifier = make_verifier(jwks.url("/certs"))
    try:
        for _ in range(2):
            with pytest.raises(TokenError, match="public key not found"):
                await verifier.verify_connect_token(sign(rsa_key, "RS256", "unknown"))
        assert len(jwks.requests) == 2
    finally:
        await verifier.close()


async def test_missing_kid_is_invalid(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = make_verifier(jwks.url("/certs"))
    try:
        with pytest.raises(TokenError, match="kid is not provided"):
            await verifier.verify_connect_token(sign(rsa_key, "RS256", None))
        assert jwks.requests == []
    finally:
        await verifier.close()


async def test_keys_not_for_signing_are_ignored(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks.keys["/certs"] = [rsa_jwk(rsa_key, "k", use="enc")]
    verifier = make_verifier(jwks.url("/certs"))
    try:
        with pytest.raises(TokenError, match="public key not found"):
            await verifier.verify_connect_token(sign(rsa_key, "RS256", "k"))
    finally:
        await verifier.close()


async def test_token_alg_must_match_key(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks.keys["/certs"] = [rsa_jwk(rsa_key, "k", alg="RS384")]
    verifier = make_verifier(jwks.url("/certs"))
    try:
        assert await verifier.verify_connect_token(sign(rsa_key, "RS384", "k"))
        with pytest.raises(TokenError, match="unsupported JWT algorithm: RS256"):
            await verifier.verify_connect_token(sign(rsa_key, "RS256", "k"))
        with pytest.raises(TokenError, match="unsupported JWT algorithm: PS256"):
            await verifier.verify_connect_token(sign(rsa_key, "PS256", "k"))
    finally:
        await verifier.close()


async def test_hmac_token_is_refused_when_jwks_is_set(jwks: JwksServer) -> None:
    verifier = make_verifier(jwks.url("/certs"))
    try:
        with pytest.raises(TokenError):
            await verifier.verify_connect_token(
                sign("hmac-key-ignored-when-jwks-is-configured", "HS256", "k")
            )
    finally:
        await verifier.close()


async def test_failing_endpoint_is_tried_twice(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks.status = 500
    verifier = make_verifier(jwks.url("/certs"))
    try:
        with pytest.raises(TokenError, match="unexpected status code: 500"):
            await verifier.verify_connect_token(sign(rsa_key, "RS256", "k"))
        assert len(jwks.requests) == 2
    finally:
        await verifier.close()


async def test_endpoint_template_filled_from_issuer(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.keys["/realms/master/certs"] = [rsa_jwk(rsa_key, "k")]
    jwks.keys["/realms/staging/certs"] = [rsa_jwk(other, "k")]
    verifier = make_verifier(
        jwks.url("/realms/{{realm}}/certs"),
        issuer_regex=r"^https://auth\.example\.com/(?P<realm>master|staging)$",
    )
    try:
        master = sign(rsa_key, "RS256", "k", {"sub": "m", "iss": "https://auth.example.com/master"})
        staging = sign(other, "RS256", "k", {"sub": "s", "iss": "https://auth.example.com/staging"})
        assert (await verifier.verify_connect_token(master)).user == "m"
        assert (await verifier.verify_connect_token(staging)).user == "s"
        forged = sign(rsa_key, "RS256", "k", {"sub": "x", "iss": "https://auth.example.com/staging"})
        with pytest.raises(TokenError, match="signature"):
            await verifier.verify_connect_token(forged)
        with pytest.raises(TokenError, match="issuer not matched"):
            await verifier.verify_connect_token(
                sign(rsa_key, "RS256", "k", {"iss": "https://evil.com/master"})
            )
        assert sorted(set(jwks.requests)) == ["/realms/master/certs", "/realms/staging/certs"]
    finally:
        await verifier.close()


async def test_endpoint_template_filled_from_audience(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks.keys["/acme/certs"] = [rsa_jwk(rsa_key, "k")]
    verifier = make_verifier(jwks.url("/{{tenant}}/certs"), audience_regex="^(?P<tenant>acme|globex)$")
    try:
        token = sign(rsa_key, "RS256", "k", {"sub": "a", "aud": ["other", "acme"]})
        assert (await verifier.verify_connect_token(token)).user == "a"
    finally:
        await verifier.close()


@pytest.mark.parametrize(
    "issuer_regex",
    [
        r"https://x/(?P<realm>[a-z]+)",
        r"https://x/(?P<realm>\w+)",
        r"https://x/(?P<realm>.*)",
        r"(?P<realm>a+|b)",
    ],
)
def test_unsafe_endpoint_template_is_config_error(issuer_regex: str) -> None:
    with pytest.raises(TokenConfigError, match="issuer_regex"):
        make_verifier("https://keys.example.com/{{realm}}/certs", issuer_regex=issuer_regex)


def test_unsafe_template_allowed_with_insecure_skip(caplog: pytest.LogCaptureFixture) -> None:
    make_verifier(
        "https://keys.example.com/{{realm}}/certs",
        issuer_regex="(?P<realm>[a-z]+)",
        insecure_skip_jwks_endpoint_safety_check=True,
    )
    assert "INSECURE" in caplog.text


def test_endpoint_needs_http_scheme() -> None:
    with pytest.raises(TokenConfigError, match="scheme"):
        make_verifier("ftp://keys.example.com/certs")


async def test_concurrent_verifications_share_one_request(
    jwks: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks.keys["/certs"] = [rsa_jwk(rsa_key, "k")]
    verifier = make_verifier(jwks.url("/certs"))
    token = sign(rsa_key, "RS256", "k")
    try:
        results = await asyncio.gather(*(verifier.verify_connect_token(token) for _ in range(5)))
        assert {result.user for result in results} == {"u"}
        assert jwks.requests == ["/certs"]
    finally:
        await verifier.close()


async def test_template_value_with_traversal_is_refused(jwks: JwksServer, rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = make_verifier(jwks.url("/realms/{{realm}}/certs"), issuer_regex=r"^(?P<realm>master|\.\.)$")
    try:
        with pytest.raises(TokenError, match="traversal"):
            await verifier.verify_connect_token(sign(rsa_key, "RS256", "k", {"iss": ".."}))
        assert jwks.requests == []
    finally:
        await verifier.close()


async def test_okp_key_other_than_ed25519_is_refused(jwks: JwksServer) -> None:
    key = ed448.Ed448PrivateKey.generate()
    jwks.keys["/certs"] = [okp_jwk(key, "ed448")]
    verifier = make_verifier(jwks.url("/certs"))
    try:
        with pytest.raises(TokenError, match="Ed25519"):
            await verifier.verify_connect_token(sign(key, "EdDSA", "ed448"))
    finally:
        await verifier.close()
