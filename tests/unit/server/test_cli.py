import json
import logging
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rotary.server import cli
from rotary.server.config.load import load_config
from rotary.server.config.schema import Config


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("rotary")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("CENTRIFUGO_", "ROTARY_"))]:
        monkeypatch.delenv(name)
    return tmp_path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rotary v") and "(Python version: 3." in out


def test_version_console_script() -> None:
    script = Path(sys.executable).parent / "rotary"
    out = subprocess.run([str(script), "version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("rotary v")


@pytest.mark.parametrize("name", ["config.json", "config.yaml", "config.yml", "config.toml"])
def test_genconfig_passes_checkconfig(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["genconfig", "-c", name]) == 0
    assert cli.main(["checkconfig", "--strict", "-c", name]) == 0
    config = load_config(name, {}).config
    assert len(config.client.token.hmac_secret_key) == 86  # 64 random bytes, URL-safe base64
    assert len(config.admin.password) == 22 and config.admin.enabled is False
    assert config.client.allowed_origins == ()
    assert cli.main(["genconfig", "-c", name]) == 1
    assert "already exists" in capsys.readouterr().out


def test_genconfig_rejects_unknown_extension(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["genconfig", "-c", "config.ini"]) == 1
    assert "supported extensions" in capsys.readouterr().out


def test_checkconfig_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = {"client": {"ping_interval": "1s"}, "channel": {"namespaces": [{"name": "ok", "history_size": 3}]}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert cli.main(["checkconfig", "-c", "bad.json"]) == 1
    out = capsys.readouterr().out
    assert "client.ping_interval" in out and "channel.namespaces[0].history_size" in out


def test_checkconfig_missing_and_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["checkconfig", "-c", "absent.json"]) == 1
    assert capsys.readouterr().out == "config file not found\n"
    (tmp_path / "c.json").write_text(json.dumps({"extra": 1}))
    assert cli.main(["checkconfig", "-c", "c.json"]) == 0
    assert cli.main(["checkconfig", "-s", "-c", "c.json"]) == 1
    assert capsys.readouterr().out == "unknown keys in config: extra\n"


def test_defaultconfig_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "base.json").write_text(json.dumps({"http_server": {"port": 9001}}))
    assert cli.main(["defaultconfig", "-c", "full.yaml", "-b", "base.json"]) == 0
    assert load_config("full.yaml", {}).config.http_server.port == 9001
    assert cli.main(["defaultconfig", "-c", "full.yaml"]) == 1
    assert capsys.readouterr().out == "error: target file already exists\n"
    assert cli.main(["defaultconfig", "-d", "-c", "x.json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["client"]["ping_interval"] == "25s"
    assert printed["channel"]["history_meta_ttl"] == "720h0m0s"


def test_defaultenv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["defaultenv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "CENTRIFUGO_HTTP_SERVER_PORT=8000" in lines
    assert 'CENTRIFUGO_CLIENT_PING_INTERVAL="25s"' in lines
    assert lines == sorted(lines)
    base = {"channel": {"namespaces": [{"name": "chat"}, {"name": "news"}]}}
    (tmp_path / "b.json").write_text(json.dumps(base))
    assert cli.main(["defaultenv", "-b", "b.json", "--base-non-zero-only"]) == 0
    assert capsys.readouterr().out == 'CENTRIFUGO_CHANNEL_NAMESPACES="chat news"\n'


def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    seen: list[Config] = []

    def run_server(config: Config, reload: Callable[[], Config], reuse_port: bool = False) -> int:
        seen.append(config)
        return 7

    module = types.ModuleType("rotary.server.app")
    module.run_server = run_server  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rotary.server.app", module)
    return seen


def test_run_passes_flags_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = fake_app(monkeypatch)
    monkeypatch.setenv("CENTRIFUGO_HTTP_SERVER_PORT", "9002")
    monkeypatch.setenv("CENTRIFUGO_ENGINE_TYPE", "redis")
    (tmp_path / ".env").write_text("CENTRIFUGO_LOG_LEVEL=error\n")
    args = ["-p", "9003", "--client.insecure", "--grpc_api.port", "10001", "--pid_file", "rotary.pid"]
    assert cli.main(args) == 7
    config = seen[0]
    assert config.http_server.port == 9003
    assert config.engine.type == "redis"
    assert config.client.insecure is True
    assert config.grpc_api.port == 10001
    assert config.log.level == "error"
    assert logging.getLogger("rotary").level == logging.ERROR
    assert (tmp_path / "rotary.pid").read_text().strip().isdigit()


def test_run_reports_every_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = fake_app(monkeypatch)
    monkeypatch.setenv("CENTRIFUGO_CLIENT_PONG_TIMEOUT", "30s")
    assert cli.main(["--engine.type", "mongo"]) == 1
    err = capsys.readouterr().err
    assert "client.ping_interval" in err and "engine.type" in err
    assert seen == []


def test_configdoc_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["configdoc", "-m", "-s", "http_server", "-l", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## `http_server`\n\nType: `HTTPServerConfig` object\n\n")
    port = "### `http_server.port`\n\nType: `int`. Default: `8000`\n\nEnv: `CENTRIFUGO_HTTP_SERVER_PORT`\n\n"
    assert port in out
    assert "`client" not in out
