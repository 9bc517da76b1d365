"""A config rotary cannot honour fails ``checkconfig`` and the start alike: non-zero exit, the key
named, no traceback. Both run as the real console script, the way a user or systemd runs them."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.env import free_port

from rotary.server.cli import ROOT_FLAGS, flag_help
from rotary.server.config.unbuilt import unbuilt_paths

ROTARY = str(Path(sys.executable).with_name("rotary"))
RUN_TIMEOUT = 60.0
"""Generous: a refusal returns at once, and a server that wrongly starts is killed at this point."""

NATS = {"enabled": True, "type": "nats"}

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "tls": ({"http_server": {"tls": {"enabled": True}}}, "http_server.tls.cert_pem"),
    "tls key": (
        {"http_server": {"tls": {"enabled": True, "cert_pem": "/nonexistent.crt", "key_pem": "k"}}},
        "http_server.tls.key_pem",
    ),
    "autocert": ({"http_server": {"tls_autocert": {"enabled": True}}}, "http_server.tls_autocert.http"),
    "nats tls": (
        {"broker": {**NATS, "nats": {"tls": {"enabled": True, "server_ca_pem": "/nonexistent.crt"}}}},
        "broker.nats.tls.server_ca_pem",
    ),
    "nats raw": (
        {"broker": {**NATS, "nats": {"raw_mode": {"enabled": True}}}},
        "broker.nats.raw_mode.enabled",
    ),
    "nats wildcards": (
        {"broker": {**NATS, "nats": {"allow_wildcards": True}}},
        "broker.nats.allow_wildcards",
    ),
    "audiences": (
        {"client": {"token": {"hmac_secret_key": "s", "audience": "a", "audience_regex": "^a$"}}},
        "client.token.audience_regex",
    ),
    "bad regex": ({"client": {"token": {"issuer_regex": "("}}}, "client.token.issuer_regex"),
    "rsa key": ({"client": {"token": {"rsa_public_key": "not a key"}}}, "client.token.rsa_public_key"),
    "jwks scheme": (
        {"client": {"token": {"jwks_public_endpoint": "ftp://x"}}},
        "client.token.jwks_public_endpoint",
    ),
    "sub ecdsa": (
        {"client": {"subscription_token": {"enabled": True, "ecdsa_public_key": "nope"}}},
        "client.subscription_token.ecdsa_public_key",
    ),
    "grpc api client tls option": (
        {"grpc_api": {"enabled": True, "tls": {"enabled": True, "server_name": "x"}}},
        "grpc_api.tls.server_name",
    ),
    "grpc api tls without a certificate": (
        {"grpc_api": {"enabled": True, "tls": {"enabled": True}}},
        "grpc_api.tls.cert_pem",
    ),
    "grpc api error mode": ({"grpc_api": {"error_mode": "custom"}}, "grpc_api.error_mode"),
    "map": (
        {"channel": {"without_namespace": {"subscription_type": "map", "map": {"mode": "ephemeral"}}}},
        "channel.without_namespace.subscription_type",
    ),
}


def rotary(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROTARY, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=cwd, check=False
    )


def assert_refused(done: subprocess.CompletedProcess[str], key: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert key in output, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_checkconfig_and_start_refuse(tmp_path: Path, case: str) -> None:
    config, key = REFUSED[case]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert_refused(rotary("checkconfig", "-c", str(path), cwd=tmp_path), key)
    assert_refused(rotary("-c", str(path), "--http_server.port", str(free_port()), cwd=tmp_path), key)


def test_unwritable_pid_file_and_log_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing-dir"
    port = str(free_port())
    pid = rotary("--pid_file", str(missing / "rotary.pid"), "--http_server.port", port, cwd=tmp_path)
    assert_refused(pid, "pid_file")
    log = rotary("--log.file", str(missing / "rotary.log"), "--http_server.port", port, cwd=tmp_path)
    assert_refused(log, "log.file")


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = rotary("-a", "127.0.0.1", "--http_server.port", str(port), cwd=tmp_path)
    assert_refused(done, "http_server.port")


def test_unreachable_engine(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    address = f"redis://127.0.0.1:{free_port()}"
    path.write_text(json.dumps({"engine": {"type": "redis", "redis": {"address": address}}}))
    done = rotary("-c", str(path), "--http_server.port", str(free_port()), cwd=tmp_path)
    assert_refused(done, "engine.redis")


def test_help_offers_no_flag_of_an_unbuilt_feature(tmp_path: Path) -> None:
    shown = rotary("--help", cwd=tmp_path).stdout
    for names, key, _ in ROOT_FLAGS:
        offered = any(f"{name} " in shown or f"{name}\n" in shown for name in names if name.startswith("--"))
        assert offered == (flag_help(key) != argparse.SUPPRESS), key
        if offered:
            section = key.rsplit(".", 1)[0]
            assert not unbuilt_paths() & {key, f"{section}.enabled"}, key
    for hidden in ("--debug.enabled", "--swagger.enabled"):
        assert hidden not in shown
    assert "--http_server.port" in shown and "Port of the external HTTP server." in shown


def test_a_hidden_flag_is_still_refused_by_name(tmp_path: Path) -> None:
    done = rotary("--swagger.enabled", "--http_server.port", str(free_port()), cwd=tmp_path)
    assert_refused(done, "swagger.enabled")
