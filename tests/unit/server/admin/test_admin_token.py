"""The admin token against one made by gorilla/securecookie, as Centrifugo v6.9.1 signs it."""

from __future__ import annotations

import base64

import pytest

from rotary.server.admin import token

SECRET = "vector-secret"
GO_ISSUED_AT = 1796450137
GO_TOKEN = "MTc5NjQ1MDEzN3xEUXdBQ21GMWRHaHZjbWw2WldRPXzivdYZ8p7MW-1Rv32D4v9-hV6CONOV5D6uA7AVLa_XIQ=="
"""securecookie.New([]byte(SECRET), nil).Encode("token", "authorized") at GO_ISSUED_AT."""


def test_rotary_signs_the_same_bytes_as_securecookie() -> None:
    assert token.issue(SECRET, GO_ISSUED_AT) == GO_TOKEN


def test_a_token_lives_thirty_days() -> None:
    assert token.valid(SECRET, GO_TOKEN, GO_ISSUED_AT)
    assert token.valid(SECRET, GO_TOKEN, GO_ISSUED_AT + 30 * 86400)
    assert not token.valid(SECRET, GO_TOKEN, GO_ISSUED_AT + 30 * 86400 + 1)


def test_another_secret_or_no_secret_refuses_it() -> None:
    assert not token.valid("other-secret", GO_TOKEN, GO_ISSUED_AT)
    assert not token.valid("", GO_TOKEN, GO_ISSUED_AT)


def _rewrap(decoded: bytes) -> str:
    return base64.urlsafe_b64encode(decoded).decode()


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "x",
        GO_TOKEN[:-4],
        GO_TOKEN.rstrip("="),
        GO_TOKEN.replace("-", "+").replace("_", "/"),
        "A" * (token.MAX_LENGTH + 4),
        _rewrap(b"1796450137|abc"),
        _rewrap(base64.urlsafe_b64decode(GO_TOKEN).replace(b"1796450137", b"1796450138", 1)),
        "ü",
    ],
)
def test_anything_else_is_refused(forged: str) -> None:
    assert not token.valid(SECRET, forged, GO_ISSUED_AT)


def test_a_signed_value_other_than_authorized_is_refused() -> None:
    stamp = b"%d" % GO_ISSUED_AT
    value = base64.urlsafe_b64encode(bytes.fromhex("0d0c000a") + b"authorizeX")
    mac = token._mac(SECRET, b"token|" + stamp + b"|" + value)
    assert not token.valid(SECRET, _rewrap(stamp + b"|" + value + b"|" + mac), GO_ISSUED_AT)
