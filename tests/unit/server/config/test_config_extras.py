"""A config using an engine or feature whose extra is not installed is refused by key, naming the
extra (rotary.server.config.extras); the test environment has every extra, so absence is injected."""

from __future__ import annotations

from dataclasses import replace

from rotary.server.config.extras import EXTRAS, installed, missing_extras
from rotary.server.config.schema import Config


def nothing_installed(module: str) -> bool:
    return False


def with_types(engine: str = "memory", broker: str = "", presence: str = "") -> Config:
    config = Config()
    config = replace(config, engine=replace(config.engine, type=engine))
    if broker:
        config = replace(config, broker=replace(config.broker, enabled=True, type=broker))
    if presence:
        config = replace(
            config, presence_manager=replace(config.presence_manager, enabled=True, type=presence)
        )
    return config


def test_the_default_config_needs_no_extra() -> None:
    assert missing_extras(Config(), nothing_installed) == []


def test_each_engine_is_refused_by_its_key_without_its_extra() -> None:
    assert missing_extras(with_types(engine="redis"), nothing_installed) == [
        "engine.type: needs the optional dependencies of rotary[redis] (missing module redis, hiredis); "
        "install them with pip install 'rotary[redis]'"
    ]
    assert [p.split(":")[0] for p in missing_extras(with_types(broker="nats"), nothing_installed)] == [
        "broker.type"
    ]
    only_presence = missing_extras(with_types(presence="redis"), nothing_installed)
    assert [p.split(":")[0] for p in only_presence] == ["presence_manager.type"]


def test_acme_is_refused_by_the_autocert_key() -> None:
    config = Config()
    http = replace(config.http_server, tls_autocert=replace(config.http_server.tls_autocert, enabled=True))
    problems = missing_extras(replace(config, http_server=http), nothing_installed)
    assert [p.split(":")[0] for p in problems] == ["http_server.tls_autocert.enabled"]
    assert "pip install 'rotary[acme]'" in problems[0]


def test_the_test_environment_has_every_extra() -> None:
    assert all(installed(module) for extra in EXTRAS for module in extra.modules)
    assert missing_extras(with_types(engine="redis", broker="nats")) == []
