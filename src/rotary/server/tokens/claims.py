"""What a verified connection or subscription JWT grants, read from its claims.

Claims follow https://centrifugal.dev/docs/server/authentication and
https://centrifugal.dev/docs/server/channel_token_auth. A claim of the wrong JSON type makes the
token invalid (close 3500), the same as a bad signature; time checks are separate because an
expired token is answered with error 109 and the client fetches a new one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from rotary.protocol import json_depth


class TokenError(Exception):
    """The token is invalid: malformed, badly signed, or carrying wrong claims."""


class TokenExpiredError(TokenError):
    """The token's ``exp`` is past or its ``nbf`` is still ahead; the client should get a new one."""

    def __init__(self) -> None:
        super().__init__("token expired")


@dataclass(frozen=True, slots=True)
class Override:
    """Channel options a token overrides for one subscription; None keeps the namespace option."""

    presence: bool | None = None
    join_leave: bool | None = None
    force_push_join_leave: bool | None = None
    force_recovery: bool | None = None
    force_positioning: bool | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionGrant:
    """One entry of the connection token's ``subs`` claim: a server-side subscription."""

    info: bytes = b""
    data: bytes = b""
    override: Override | None = None


@dataclass(slots=True)
class ConnectToken:
    """Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, about a
    microsecond per connect (issue 15); nothing changes one once it is read from the claims."""

    user: str
    expire_at: int = 0
    """Unix seconds when the connection expires; 0 never. ``expire_at`` claim wins over ``exp``."""
    info: bytes = b""
    channels: tuple[str, ...] = ()
    """Server-side subscriptions with namespace defaults. Empty when ``subs`` is given, which wins."""
    subs: dict[str, SubscriptionGrant] = field(default_factory=dict)
    meta: bytes = b""


@dataclass(frozen=True, slots=True)
class SubscriptionToken:
    user: str
    channel: str
    client: str = ""
    expire_at: int = 0
    info: bytes = b""
    data: bytes = b""
    override: Override | None = None


def _invalid(reason: str) -> TokenError:
    return TokenError(f"invalid token: {reason}")


_NUMBERS: Final = (int, float)
"""A tuple, not ``int | float``: that union is built anew at every call."""


def _is_number(value: object) -> bool:
    return isinstance(value, _NUMBERS) and not isinstance(value, bool)


_STRING_CLAIMS: Final = ("sub", "iss", "jti")
_NUMBER_CLAIMS: Final = ("exp", "nbf", "iat")
"""Registered claims of RFC 7519 with a JSON type to check (``aud`` has its own)."""


class Claims:
    """Typed reads over a JWT payload; an absent claim reads as its zero value."""

    __slots__ = ("raw", "values")

    def __init__(self, raw: bytes) -> None:
        try:  # Centrifugo's Go decoder takes claims up to 10000 levels deep
            try:  # json_depth.loads without its frame: orjson first, which nearly always reads them
                values = orjson.loads(raw)
            except orjson.JSONDecodeError:  # too deep for orjson, or not JSON (the same error)
                values = json_depth.loads(raw, json_depth.GO_MAX_DEPTH)
        except (json_depth.InvalidJson, json_depth.JsonDepthError) as exc:
            raise _invalid(f"claims are not JSON: {exc}") from None
        if not isinstance(values, dict):
            raise _invalid("claims are not a JSON object")
        self.raw = raw
        self.values: dict[str, Any] = values

    def string(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _invalid(f"claim {name!r} must be a string")
        return value

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or _is_number(value):
            return value
        raise _invalid(f"claim {name!r} must be a number")

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise _invalid(f"claim {name!r} must be an integer")

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _invalid(f"claim {name!r} must be an array of strings")
        return tuple(value)

    def audiences(self) -> tuple[str, ...]:
        """``aud`` is a string or an array of strings (RFC 7519 section 4.1.3)."""
        value = self.values.get("aud")
        if isinstance(value, str):
            return (value,)
        return self.strings("aud")

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self.values.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _invalid(f"claim {name!r} must be an object")
        return value

    def user(self, user_id_claim: str) -> str:
        """The user: ``sub``, or the configured claim read the way Centrifugo reads it (as text)."""
        subject = self.string("sub")
        if not user_id_claim:
            return subject
        return _as_text(self.values.get(user_id_claim))

    def expire_at(self) -> int:
        """``expire_at`` decouples connection expiry from ``exp``; its 0 means never expire."""
        expire_at = self.integer("expire_at")
        if expire_at is not None:
            return max(expire_at, 0)
        exp = self.number("exp")
        return int(exp) if exp is not None else 0

    def check_registered(self) -> None:
        """Reject registered claims of the wrong type before anything else reads them (what
        ``string`` and ``number`` check, in their order, read inline: this runs on every token)."""
        values = self.values
        for name in _STRING_CLAIMS:
            value = values.get(name)
            if value is not None and not isinstance(value, str):
                raise _invalid(f"claim {name!r} must be a string")
        for name in _NUMBER_CLAIMS:
            value = values.get(name)
            if value is not None and not _is_number(value):
                raise _invalid(f"claim {name!r} must be a number")
        if "aud" in values:
            self.audiences()

    def check_times(self, now: float) -> None:
        exp = self.number("exp")
        nbf = self.number("nbf")
        if (exp is not None and exp <= now) or (nbf is not None and nbf >= now):
            raise TokenExpiredError()


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json_depth.dumps(value).decode()


def _raw_json(value: object) -> bytes:
    return b"" if value is None else json_depth.dumps(value)


def _payload(values: Mapping[str, Any], name: str) -> bytes:
    """``name`` as raw JSON, or ``b64<name>`` decoded when that is set (for binary payloads)."""
    encoded = values.get(f"b64{name}")
    if encoded is None or encoded == "":
        return _raw_json(values.get(name))
    if not isinstance(encoded, str):
        raise _invalid(f"claim 'b64{name}' must be a string")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise _invalid(f"claim 'b64{name}': {exc}") from None


_OVERRIDE_FIELDS = ("presence", "join_leave", "force_push_join_leave", "force_recovery", "force_positioning")


def _override(value: object) -> Override | None:
    """``{"presence": {"value": true}, ...}``; an option with ``{}`` overrides to false."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("override must be an object")
    return Override(**{name: _bool_value(value.get(name), name) for name in _OVERRIDE_FIELDS})


def _bool_value(value: object, name: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(f"override {name!r} must be an object")
    flag = value.get("value", False)
    if not isinstance(flag, bool):
        raise _invalid(f"override {name!r} value must be a boolean")
    return flag


def _grant(channel: str, value: object) -> SubscriptionGrant:
    if value is None:
        return SubscriptionGrant()
    if not isinstance(value, dict):
        raise _invalid(f"subs entry for channel {channel!r} must be an object")
    return SubscriptionGrant(
        info=_payload(value, "info"), data=_payload(value, "data"), override=_override(value.get("override"))
    )


def connect_token(claims: Claims, user_id_claim: str) -> ConnectToken:
    """Build what a connection token grants; the caller has checked signature, audience and times."""
    channels = claims.strings("channels")
    granted = claims.mapping("subs")
    subs = {channel: _grant(channel, value) for channel, value in granted.items()} if granted else {}
    user = claims.user(user_id_claim)
    expire_at = claims.expire_at()
    info = _payload(claims.values, "info")
    meta = _raw_json(claims.values.get("meta"))
    # positional: a class called with keywords gets them as a dict first
    return ConnectToken(user, expire_at, info, () if subs else channels, subs, meta)


def subscription_token(claims: Claims, user_id_claim: str) -> SubscriptionToken:
    return SubscriptionToken(
        user=claims.user(user_id_claim),
        channel=claims.string("channel"),
        client=claims.string("client"),
        expire_at=claims.expire_at(),
        info=_payload(claims.values, "info"),
        data=_payload(claims.values, "data"),
        override=_override(claims.values.get("override")),
    )
