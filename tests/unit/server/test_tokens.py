"""Connection and subscription JWT verification with static keys (HMAC, RSA, ECDSA)."""

from __future__ import annotations

import base64
import binascii
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from helpers.certs import self_signed
from hypothesis import given
from hypothesis import strategies as st

from rotary.server.config.schema import SubscriptionTokenConfig, TokenConfig
from rotary.server.tokens import (
    ConnectToken,
    Override,
    SubscriptionGrant,
    TokenConfigError,
    TokenError,
    TokenExpiredError,
    TokenVerifier,
)
from rotary.server.tokens.signed import _base64url

NOW = 1_700_000_000.0
SECRET = "current-secret-of-thirty-two-bytes!!"
OLD_SECRET = "previous-secret-of-thirty-two-bytes!"


def sign(claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return str(jwt.encode(claims, key, algorithm=algorithm, headers=headers or None))


def public_pem(private_key: Any) -> str:
    pem: bytes = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def verifier(
    *, sub: SubscriptionTokenConfig | None = None, skip_signature: bool = False, **token: Any
) -> TokenVerifier:
    token.setdefault("hmac_secret_key", SECRET)
    return TokenVerifier(
        TokenConfig(**token), sub or SubscriptionTokenConfig(), skip_signature=skip_signature, now=lambda: NOW
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def connect(
    claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256", **config: Any
) -> ConnectToken:
    return await verifier(**config).verify_connect_token(sign(claims, key, algorithm))


# --- algorithms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
async def test_hmac_algorithms(algorithm: str) -> None:
    token = await connect({"sub": "42"}, algorithm=algorithm)
    assert token.user == "42"


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
async def test_rsa_algorithms(algorithm: str, rsa_key: rsa.RSAPrivateKey) -> None:
    token = await connect({"sub": "7"}, rsa_key, algorithm, rsa_public_key=public_pem(rsa_key))
    assert token.user == "7"


@pytest.mark.parametrize(
    ("algorithm", "curve"), [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())]
)
async def test_ecdsa_algorithms(algorithm: str, curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    token = await connect({"sub": "8"}, key, algorithm, ecdsa_public_key=public_pem(key))
    assert token.user == "8"


async def test_ecdsa_algorithm_of_another_curve_is_disabled() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(TokenError, match="disabled JWT algorithm: ES384"):
        await connect({"sub": "8"}, other, "ES384", ecdsa_public_key=public_pem(key))


async def test_algorithm_without_configured_key_is_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenError, match="disabled JWT algorithm: RS256"):
        await connect({"sub": "1"}, rsa_key, "RS256")


async def test_alg_none_is_rejected() -> None:
    unsigned = jwt.encode({"sub": "1"}, "", algorithm="none")
    with pytest.raises(TokenError, match="unsupported JWT algorithm: none") as raised:
        await verifier().verify_connect_token(unsigned)
    assert not isinstance(raised.value, TokenExpiredError)


async def test_bad_signature_is_invalid() -> None:
    with pytest.raises(TokenError, match="signature") as raised:
        await connect({"sub": "1"}, "another-secret-of-thirty-two-bytes!!")
    assert not isinstance(raised.value, TokenExpiredError)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig"])
async def test_malformed_token_is_invalid(garbage: str) -> None:
    with pytest.raises(TokenError):
        await verifier().verify_connect_token(garbage)


async def test_skip_signature_reads_claims_of_any_token() -> None:
    unsigned = jwt.encode({"sub": "9"}, "", algorithm="none")
    token = await verifier(skip_signature=True).verify_connect_token(unsigned)
    assert token.user == "9"


# --- HMAC key rotation ----------------------------------------------------------------------------


async def test_previous_hmac_key_is_accepted_without_deadline() -> None:
    token = await connect({"sub": "1"}, OLD_SECRET, hmac_previous_secret_key=OLD_SECRET)
    assert token.user == "1"


async def test_previous_hmac_key_is_accepted_until_its_deadline() -> None:
    config = {"hmac_previous_secret_key": OLD_SECRET}
    assert await connect({"sub": "1"}, OLD_SECRET, **config, hmac_previous_secret_key_valid_until=int(NOW))
    with pytest.raises(TokenError, match="signature"):
        await connect({"sub": "1"}, OLD_SECRET, **config, hmac_previous_secret_key_valid_until=int(NOW) - 1)


async def test_previous_hmac_key_does_not_replace_current() -> None:
    token = await connect({"sub": "1"}, SECRET, hmac_previous_secret_key=OLD_SECRET)
    assert token.user == "1"
    with pytest.raises(TokenError):
        await connect(
            {"sub": "1"}, "neither-key-of-thirty-two-bytes!!!!!", hmac_previous_secret_key=OLD_SECRET
        )


# --- times ----------------------------------------------------------------------------------------


async def test_expired_token() -> None:
    with pytest.raises(TokenExpiredError):
        await connect({"sub": "1", "exp": NOW - 1})


async def test_exp_equal_to_now_is_expired() -> None:
    with pytest.raises(TokenExpiredError):
        await connect({"sub": "1", "exp": NOW})


async def test_nbf_in_future_counts_as_expired() -> None:
    with pytest.raises(TokenExpiredError):
        await connect({"sub": "1", "nbf": NOW + 10})
    assert await connect({"sub": "1", "nbf": NOW - 10})


async def test_forged_expired_token_is_invalid_not_expired() -> None:
    with pytest.raises(TokenError) as raised:
        await connect({"sub": "1", "exp": NOW - 1}, "another-secret-of-thirty-two-bytes!!")
    assert not isinstance(raised.value, TokenExpiredError)


@pytest.mark.parametrize(
    ("claims", "expire_at"),
    [
        ({}, 0),
        ({"exp": NOW + 60}, int(NOW) + 60),
        ({"exp": NOW + 60, "expire_at": int(NOW) + 3600}, int(NOW) + 3600),
        ({"exp": NOW + 60, "expire_at": 0}, 0),
        ({"expire_at": int(NOW) - 5}, int(NOW) - 5),
    ],
)
async def test_expire_at(claims: dict[str, Any], expire_at: int) -> None:
    token = await connect({"sub": "1", **claims})
    assert token.expire_at == expire_at


# --- audience and issuer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "claims", "accepted"),
    [
        ({"audience": "rotary"}, {"aud": "rotary"}, True),
        ({"audience": "rotary"}, {"aud": ["other", "rotary"]}, True),
        ({"audience": "rotary"}, {"aud": "other"}, False),
        ({"audience": "rotary"}, {}, False),
        ({"audience_regex": "^rot"}, {"aud": "rotary"}, True),
        ({"audience_regex": "^rot"}, {"aud": ["x", "rotary"]}, True),
        ({"audience_regex": "^rot"}, {"aud": "other"}, False),
        ({"issuer": "my_app"}, {"iss": "my_app"}, True),
        ({"issuer": "my_app"}, {"iss": "other"}, False),
        ({"issuer": "my_app"}, {}, False),
        ({"issuer_regex": r"^https://auth\.example\.com/"}, {"iss": "https://auth.example.com/x"}, True),
        ({"issuer_regex": r"^https://auth\.example\.com/"}, {"iss": "https://evil.com/x"}, False),
        ({}, {"aud": "anything", "iss": "anyone"}, True),
    ],
)
async def test_audience_and_issuer(config: dict[str, Any], claims: dict[str, Any], accepted: bool) -> None:
    if accepted:
        assert (await connect({"sub": "1", **claims}, **config)).user == "1"
    else:
        with pytest.raises(TokenError):
            await connect({"sub": "1", **claims}, **config)


@pytest.mark.parametrize(
    "config",
    [
        {"audience": "a", "audience_regex": "a"},
        {"issuer": "a", "issuer_regex": "a"},
        {"issuer_regex": "("},
    ],
)
def test_conflicting_or_broken_settings_are_config_errors(config: dict[str, Any]) -> None:
    with pytest.raises(TokenConfigError):
        verifier(**config)


# --- claims ---------------------------------------------------------------------------------------


async def test_user_id_claim() -> None:
    assert (await connect({"uid": "7", "sub": "1"}, user_id_claim="uid")).user == "7"
    assert (await connect({"uid": 7}, user_id_claim="uid")).user == "7"
    assert (await connect({"sub": "1"}, user_id_claim="uid")).user == ""


async def test_anonymous_token_has_empty_user() -> None:
    assert (await connect({})).user == ""


async def test_info_meta_and_channels() -> None:
    token = await connect(
        {"sub": "1", "info": {"name": "Alex"}, "meta": {"role": "admin"}, "channels": ["a", "b"]}
    )
    assert token.info == b'{"name":"Alex"}'
    assert token.meta == b'{"role":"admin"}'
    assert token.channels == ("a", "b")
    assert token.subs == {}


async def test_b64info_wins_over_info() -> None:
    token = await connect({"info": {"x": 1}, "b64info": base64.b64encode(b"\x00\xff").decode()})
    assert token.info == b"\x00\xff"


async def test_subs_with_options_replace_channels() -> None:
    subs = {
        "news": {"info": {"k": "v"}, "b64data": base64.b64encode(b"\x01").decode()},
        "chat": {
            "override": {"presence": {"value": True}, "join_leave": {"value": False}, "force_recovery": {}}
        },
        "plain": {},
    }
    token = await connect({"channels": ["ignored"], "subs": subs})
    assert token.channels == ()
    assert token.subs == {
        "news": SubscriptionGrant(info=b'{"k":"v"}', data=b"\x01"),
        "chat": SubscriptionGrant(
            override=Override(
                presence=True, join_leave=False, force_push_join_leave=None, force_recovery=False
            )
        ),
        "plain": SubscriptionGrant(),
    }


async def test_channel_claim_in_connection_token_is_invalid() -> None:
    with pytest.raises(TokenError, match="channel claim"):
        await connect({"sub": "1", "channel": "news"})


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 1},
        {"exp": "soon"},
        {"expire_at": 1.5},
        {"aud": 5},
        {"channels": "news"},
        {"subs": ["news"]},
        {"subs": {"news": {"override": {"presence": {"value": "yes"}}}}},
        {"b64info": "***"},
        {"iat": "x"},
    ],
)
async def test_claims_of_wrong_type_are_invalid(claims: dict[str, Any]) -> None:
    with pytest.raises(TokenError) as raised:
        await connect(claims)
    assert not isinstance(raised.value, TokenExpiredError)


# --- subscription tokens --------------------------------------------------------------------------


async def test_subscription_token_claims() -> None:
    claims = {
        "sub": "42",
        "channel": "$private",
        "client": "client-id",
        "exp": NOW + 60,
        "info": {"i": 1},
        "b64data": base64.b64encode(b"\x02").decode(),
        "override": {"force_positioning": {"value": True}},
    }
    token = await verifier().verify_subscription_token(sign(claims))
    assert (token.user, token.channel, token.client, token.expire_at) == (
        "42",
        "$private",
        "client-id",
        int(NOW) + 60,
    )
    assert (token.info, token.data) == (b'{"i":1}', b"\x02")
    assert token.override == Override(force_positioning=True)


async def test_subscription_token_without_override_or_client() -> None:
    token = await verifier().verify_subscription_token(
        sign({"channel": "$c", "expire_at": 0, "exp": NOW + 5})
    )
    assert (token.user, token.client, token.expire_at, token.override) == ("", "", 0, None)


async def test_subscription_token_requires_channel() -> None:
    with pytest.raises(TokenError, match="channel claim is required"):
        await verifier().verify_subscription_token(sign({"sub": "1"}))


async def test_expired_subscription_token() -> None:
    with pytest.raises(TokenExpiredError):
        await verifier().verify_subscription_token(sign({"channel": "$c", "exp": NOW - 1}))


async def test_subscription_token_uses_its_own_keys_when_enabled() -> None:
    sub_secret = "subscription-secret-of-32-bytes!!!!"
    separate = verifier(sub=SubscriptionTokenConfig(enabled=True, hmac_secret_key=sub_secret))
    assert (await separate.verify_subscription_token(sign({"channel": "$c"}, sub_secret))).channel == "$c"
    with pytest.raises(TokenError):
        await separate.verify_subscription_token(sign({"channel": "$c"}))
    shared = verifier(sub=SubscriptionTokenConfig(enabled=False, hmac_secret_key=sub_secret))
    assert (await shared.verify_subscription_token(sign({"channel": "$c"}))).channel == "$c"


async def test_subscription_token_user_id_claim_follows_its_config() -> None:
    separate = verifier(
        sub=SubscriptionTokenConfig(enabled=True, hmac_secret_key=SECRET, user_id_claim="uid")
    )
    assert (await separate.verify_subscription_token(sign({"channel": "$c", "uid": "5"}))).user == "5"


# --- PEM settings ---------------------------------------------------------------------------------


async def test_pem_from_base64(rsa_key: rsa.RSAPrivateKey) -> None:
    encoded = base64.b64encode(public_pem(rsa_key).encode()).decode()
    assert (await connect({"sub": "1"}, rsa_key, "RS256", rsa_public_key=encoded)).user == "1"


async def test_pem_from_file(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_text(public_pem(key))
    assert (await connect({"sub": "1"}, key, "ES256", ecdsa_public_key=str(path))).user == "1"


async def test_pem_certificate(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = self_signed(key=rsa_key).cert_pem
    assert (await connect({"sub": "1"}, rsa_key, "RS256", rsa_public_key=pem)).user == "1"


@pytest.mark.parametrize("field", ["rsa_public_key", "ecdsa_public_key"])
def test_unreadable_pem_is_config_error(field: str) -> None:
    with pytest.raises(TokenConfigError):
        settings: dict[str, Any] = {field: "/no/such/file.pem"}
        verifier(**settings)


def test_key_of_wrong_type_is_config_error(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenConfigError, match="ECDSA"):
        verifier(ecdsa_public_key=public_pem(rsa_key))


# --- segment decoding -----------------------------------------------------------------------------


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.!é \n", max_size=40)
)
def test_segments_decode_as_urlsafe_b64decode(segment: str) -> None:
    """parse_token decodes each segment as ``base64.urlsafe_b64decode`` of the padded segment
    does (alphabet, discarded characters, padding errors), without its Python layers."""
    try:
        expected: bytes | None = base64.urlsafe_b64decode(
            segment.encode("ascii") + b"=" * (-len(segment) % 4)
        )
    except (binascii.Error, UnicodeEncodeError, ValueError):
        expected = None
    try:
        got: bytes | None = _base64url(segment, "payload")
    except TokenError:
        got = None
    assert got == expected
