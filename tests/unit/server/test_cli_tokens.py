"""The gentoken, gensubtoken, checktoken and checksubtoken commands, run in-process on temp configs."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from rotary.server.cli_tokens import go_duration, register

SECRET = "cli-secret-that-is-long-enough-for-hs256"
SUB_SECRET = "cli-subscription-secret-long-enough-too"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="rotary")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


def write_config(tmp_path: Path, client: dict[str, Any], name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"client": client}))
    return str(path)


@pytest.fixture
def config(tmp_path: Path) -> str:
    return write_config(tmp_path, {"token": {"hmac_secret_key": SECRET}})


def claims_of(token: str, key: str = SECRET) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})
    return decoded


def test_gentoken(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("gentoken", "-c", config, "-u", "42") == 0
    header, token, tail = capsys.readouterr().out.split("\n")
    assert header == 'HMAC SHA-256 JWT for user "42" with expiration TTL 168h0m0s:'
    assert tail == ""
    claims = claims_of(token)
    assert claims["sub"] == "42"
    assert abs(claims["exp"] - (time.time() + 604800)) < 5
    assert claims["exp"] - claims["iat"] == 604800
    assert list(claims) == ["sub", "exp", "iat"]  # Centrifugo's order, which checktoken shows


def test_gentoken_quiet_prints_only_the_token(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("gentoken", "-c", config, "-u", "42", "-q", "-t", "60") == 0
    out = capsys.readouterr().out
    assert "\n" not in out
    assert claims_of(out)["sub"] == "42"


def test_gentoken_without_expiration_for_anonymous(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("gentoken", "-c", config, "-t", "-1") == 0
    header, token, _ = capsys.readouterr().out.split("\n")
    assert header == "HMAC SHA-256 JWT for anonymous user without expiration:"
    assert set(claims_of(token)) == {"iat"}


def test_gentoken_sets_user_id_claim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, {"token": {"hmac_secret_key": SECRET, "user_id_claim": "uid"}})
    assert run("gentoken", "-c", path, "-u", "7", "-q") == 0
    token = capsys.readouterr().out
    assert claims_of(token)["uid"] == "7"
    assert run("checktoken", "-c", path, token) == 0
    assert capsys.readouterr().out.startswith("valid token for user 7\n")


def test_gentoken_needs_hmac_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, {})
    assert run("gentoken", "-c", path) == 1
    assert capsys.readouterr().out == (
        "error: gentoken only supports generating HMAC-signed tokens, but no HMAC secret key is set in the "
        "configuration (client.token.hmac_secret_key) – if you use RSA/ECDSA/JWKS token verification you need "
        "to generate the JWT with your own tooling\n"
    )


def test_broken_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    assert run("gentoken", "-c", str(path)) == 1
    assert capsys.readouterr().out.startswith("error getting config: ")


def test_yaml_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"client:\n  token:\n    hmac_secret_key: {SECRET}\n")
    assert run("gentoken", "-c", str(path), "-q") == 0
    assert claims_of(capsys.readouterr().out) == {
        "iat": pytest.approx(time.time(), abs=5),
        "exp": pytest.approx(time.time() + 604800, abs=5),
    }


def test_checktoken_accepts_generated_token(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    run("gentoken", "-c", config, "-u", "42", "-q")
    token = capsys.readouterr().out
    assert run("checktoken", "-c", config, token) == 0
    first, second, tail = capsys.readouterr().out.split("\n")
    assert first == "valid token for user 42"
    assert json.loads(second.removeprefix("payload: ")) == claims_of(token)
    assert tail == ""


def test_checktoken_anonymous(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt.encode({"info": {"a": 1}}, SECRET, algorithm="HS256")
    assert run("checktoken", "-c", config, token) == 0
    assert capsys.readouterr().out == 'valid token for anonymous user\npayload: {"info":{"a":1}}\n'


def test_checktoken_rejects_bad_signature(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt.encode({"sub": "1"}, "some-other-secret-long-enough-for-hs256", algorithm="HS256")
    assert run("checktoken", "-c", config, token) == 1
    out = capsys.readouterr().out
    assert out.startswith(
        'error: token with algorithm HS256 and claims {"sub":"1"} has error: invalid token: '
    )


def test_checktoken_reports_expiry(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt.encode({"sub": "1", "exp": 1000}, SECRET, algorithm="HS256")
    assert run("checktoken", "-c", config, token) == 1
    assert capsys.readouterr().out.endswith("has error: token expired\n")


def test_checktoken_rejects_garbage(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("checktoken", "-c", config, "garbage") == 1
    out = capsys.readouterr().out
    assert out.startswith("error: ") and "has error" not in out


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "a.b"])
def test_checktoken_says_what_centrifugo_says_of_a_malformed_token(
    config: str, capsys: pytest.CaptureFixture[str], token: str
) -> None:
    assert run("checktoken", "-c", config, token) == 1
    assert capsys.readouterr().out == "error: token format is not valid\n"


@pytest.mark.parametrize("command", ["checktoken", "checksubtoken"])
def test_check_needs_exactly_one_token(command: str, config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(command, "-c", config) == 1
    assert capsys.readouterr().out == f"error: provide token to check [rotary {command} <TOKEN>]\n"
    assert run(command, "-c", config, "a", "b") == 1


def test_gensubtoken_requires_channel(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("gensubtoken", "-c", config, "-u", "42") == 1
    assert capsys.readouterr().out == "channel is required\n"


def test_gensubtoken_and_checksubtoken(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("gensubtoken", "-c", config, "-u", "42", "-s", "$private", "-t", "3600") == 0
    header, token, _ = capsys.readouterr().out.split("\n")
    assert header == 'HMAC SHA-256 JWT for user "42" and channel "$private" with expiration TTL 1h0m0s:'
    assert claims_of(token)["channel"] == "$private"
    assert list(claims_of(token)) == ["sub", "exp", "iat", "channel"]  # Centrifugo's order
    assert run("checksubtoken", "-c", config, token) == 0
    first, second, _ = capsys.readouterr().out.split("\n")
    assert first == 'valid subscription token for user "42" and channel "$private"'
    assert json.loads(second.removeprefix("payload: "))["sub"] == "42"


def test_subscription_commands_use_separate_key_when_enabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path,
        {
            "token": {"hmac_secret_key": SECRET},
            "subscription_token": {"enabled": True, "hmac_secret_key": SUB_SECRET},
        },
    )
    assert run("gensubtoken", "-c", path, "-s", "$c", "-q") == 0
    token = capsys.readouterr().out
    assert claims_of(token, SUB_SECRET)["channel"] == "$c"
    assert run("checksubtoken", "-c", path, token) == 0
    assert capsys.readouterr().out.startswith(
        'valid subscription token for anonymous user and channel "$c"\n'
    )
    connection_signed = jwt.encode({"channel": "$c"}, SECRET, algorithm="HS256")
    assert run("checksubtoken", "-c", path, connection_signed) == 1


def test_checksubtoken_requires_channel_claim(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt.encode({"sub": "1"}, SECRET, algorithm="HS256")
    assert run("checksubtoken", "-c", config, token) == 1
    assert "channel claim is required for subscription JWT" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (30, "30s"), (60, "1m0s"), (3600, "1h0m0s"), (604800, "168h0m0s"), (3725, "1h2m5s")],
)
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text
