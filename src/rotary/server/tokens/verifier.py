"""Connection and subscription JWT verification as configured by ``client.token`` and
``client.subscription_token``.

The order of checks follows https://centrifugal.dev/docs/server/authentication: decode, take template
variables from ``iss``/``aud`` regexes, check the signature, then exact ``aud``/``iss``, then times.
So a token that is both forged and expired is reported as invalid, never as expired.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from rotary.server.config.schema import SubscriptionTokenConfig, TokenConfig
from rotary.server.tokens.claims import (
    ConnectToken,
    SubscriptionToken,
    TokenError,
    connect_token,
    subscription_token,
)
from rotary.server.tokens.jwks import JwksKeys, check_endpoint_safety, check_endpoint_scheme
from rotary.server.tokens.keys import Keyring, StaticKeys, TokenConfigError
from rotary.server.tokens.signed import SignedToken, parse_token

logger = logging.getLogger("rotary.server.tokens")


def _compile(name: str, pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TokenConfigError(f"error compiling {name} regex: {exc}") from None


def token_problems(config: TokenConfig, path: str = "") -> list[str]:
    """Why no TokenPolicy can be built from ``config``, each problem led by its key under ``path``.

    Config validation calls this, so a bad key, regex or JWKS template stops ``checkconfig`` and the
    start with a message naming the key, not with a traceback while the server is being built.
    """
    at = f"{path}." if path else ""
    problems: list[str] = []
    for plain, regex in (("audience", "audience_regex"), ("issuer", "issuer_regex")):
        if getattr(config, plain) and getattr(config, regex):
            problems.append(f"{at}{regex}: can not use both {plain} and {regex}, configure only one of them")
    steps: tuple[tuple[str, Callable[[], object]], ...] = (
        ("audience_regex", lambda: _compile("audience", config.audience_regex)),
        ("issuer_regex", lambda: _compile("issuer", config.issuer_regex)),
        ("jwks_public_endpoint", lambda: _check_jwks_endpoint(config)),
        ("rsa_public_key", lambda: Keyring(rsa_public_key=config.rsa_public_key)),
        ("ecdsa_public_key", lambda: Keyring(ecdsa_public_key=config.ecdsa_public_key)),
    )
    for key, step in steps:
        try:
            step()
        except TokenConfigError as exc:
            problems.append(f"{at}{key}: {exc}")
    return problems


def _check_jwks_endpoint(config: TokenConfig) -> None:
    if not config.jwks_public_endpoint:
        return
    check_endpoint_scheme(config.jwks_public_endpoint)
    if config.insecure_skip_jwks_endpoint_safety_check:
        return
    try:
        check_endpoint_safety(config.jwks_public_endpoint, config.issuer_regex, config.audience_regex)
    except re.error:
        pass  # the regex's own step reports it


def _warn_unsafe_template(config: TokenConfig) -> None:
    if not (config.jwks_public_endpoint and config.insecure_skip_jwks_endpoint_safety_check):
        return
    try:
        check_endpoint_safety(config.jwks_public_endpoint, config.issuer_regex, config.audience_regex)
    except TokenConfigError as exc:
        logger.warning(
            "JWKS endpoint template safety check skipped — this is INSECURE, use an explicit list of "
            "allowed values in the regex: %s",
            exc,
        )


def _static_keys(config: TokenConfig) -> StaticKeys:
    current = Keyring(config.hmac_secret_key, config.rsa_public_key, config.ecdsa_public_key)
    previous = Keyring(config.hmac_previous_secret_key) if config.hmac_previous_secret_key else None
    return StaticKeys(current, previous, config.hmac_previous_secret_key_valid_until)


class TokenPolicy:
    """One token config: where keys come from and which ``aud``/``iss`` and user claim apply.

    With a JWKS endpoint, only JWKS keys verify tokens; the static keys are then ignored, as documented.
    """

    def __init__(self, config: TokenConfig, now: Callable[[], float]) -> None:
        problems = token_problems(config)
        if problems:
            raise TokenConfigError("; ".join(problems))
        _warn_unsafe_template(config)
        self._now = now
        self._audience = config.audience
        self._issuer = config.issuer
        self._audience_re = _compile("audience", config.audience_regex)
        self._issuer_re = _compile("issuer", config.issuer_regex)
        self.user_id_claim = config.user_id_claim
        self._jwks: JwksKeys | None = None
        self._static: StaticKeys | None = None
        if config.jwks_public_endpoint:
            self._jwks = JwksKeys(config.jwks_public_endpoint, now=now)
        else:
            self._static = _static_keys(config)

    @property
    def fetches_keys(self) -> bool:
        """Whether keys come from a JWKS endpoint (:meth:`authenticate` may wait for them); without
        one, :meth:`authenticate_static` does the same checks with no coroutine."""
        return self._jwks is not None

    async def authenticate(self, token: SignedToken, *, skip_signature: bool) -> None:
        """Raise TokenError unless the token is signed by a configured key and meant for us."""
        if self._jwks is None:
            self.authenticate_static(token, skip_signature=skip_signature)
            return
        variables = self._template_variables(token)
        if not skip_signature:
            await self._jwks.verify(token, variables)
        self._check_audience_and_issuer(token)

    def authenticate_static(self, token: SignedToken, *, skip_signature: bool) -> None:
        """:meth:`authenticate` with the keys of the config file (no JWKS endpoint)."""
        if self._issuer_re is not None or self._audience_re is not None:
            self._template_variables(token)  # a regex that does not match still rejects
        if not skip_signature and self._static is not None:
            self._static.verify(token, self._now())
        self._check_audience_and_issuer(token)

    def _check_audience_and_issuer(self, token: SignedToken) -> None:
        claims = token.claims
        if self._audience and self._audience not in claims.audiences():
            raise TokenError("invalid token: invalid audience")
        if self._issuer and claims.string("iss") != self._issuer:
            raise TokenError("invalid token: invalid issuer")

    def _template_variables(self, token: SignedToken) -> dict[str, str]:
        """Named groups of the issuer and audience regexes; a regex that does not match rejects."""
        variables: dict[str, str] = {}
        if self._issuer_re is not None:
            match = self._issuer_re.search(token.claims.string("iss"))
            if match is None:
                raise TokenError("invalid token: issuer not matched")
            variables.update(_groups(match))
        if self._audience_re is not None:
            match = next(filter(None, map(self._audience_re.search, token.claims.audiences())), None)
            if match is None:
                raise TokenError("invalid token: audience not matched")
            variables.update(_groups(match))
        return variables

    async def close(self) -> None:
        if self._jwks is not None:
            await self._jwks.close()


def _groups(match: re.Match[str]) -> dict[str, str]:
    return {name: value or "" for name, value in match.groupdict().items()}


class TokenVerifier:
    """Verifies the tokens clients send in connect, subscribe, refresh and sub_refresh.

    Raises :class:`TokenError` for an invalid token (the caller disconnects with 3500) and
    :class:`TokenExpiredError` for an expired one (the caller answers error 109). Channel-dependent
    checks (the namespace exists, ``client`` and ``sub`` match the connection) are the caller's.
    """

    def __init__(
        self,
        token: TokenConfig,
        subscription_token: SubscriptionTokenConfig,
        *,
        skip_signature: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._now = now
        self._skip_signature = skip_signature
        self._connect = TokenPolicy(token, now)
        self._subscribe = (
            TokenPolicy(subscription_token, now) if subscription_token.enabled else self._connect
        )

    async def verify_connect_token(self, token: str) -> ConnectToken:
        policy = self._connect
        signed = parse_token(token)
        if policy.fetches_keys:
            await policy.authenticate(signed, skip_signature=self._skip_signature)
        else:  # no coroutine to make and await per connect
            policy.authenticate_static(signed, skip_signature=self._skip_signature)
        if signed.claims.string("channel"):
            raise TokenError(
                "invalid token: connection JWT can not contain channel claim, only subscription JWT can"
            )
        signed.claims.check_times(self._now())
        return connect_token(signed.claims, policy.user_id_claim)

    async def verify_subscription_token(self, token: str) -> SubscriptionToken:
        policy = self._subscribe
        signed = parse_token(token)
        if policy.fetches_keys:
            await policy.authenticate(signed, skip_signature=self._skip_signature)
        else:
            policy.authenticate_static(signed, skip_signature=self._skip_signature)
        signed.claims.check_times(self._now())
        if not signed.claims.string("channel"):
            raise TokenError("invalid token: channel claim is required for subscription JWT")
        return subscription_token(signed.claims, policy.user_id_claim)

    async def close(self) -> None:
        await self._connect.close()
        if self._subscribe is not self._connect:
            await self._subscribe.close()
