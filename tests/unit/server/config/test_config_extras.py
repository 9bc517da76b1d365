"""A config using an engine or feature whose extra is not installed is refused by key, naming the
extra (rotary.server.config.extras); the test environment has every extra, so absence is injected."""

from __future__ import annotations

from dataclasses import replace

from rotary.server.config.extras import EXTRAS, installed, missing_extras
from rotary.server.config.schema import Config
from rotary.server.config.schema_channels import NamedProxyConfig


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


def test_only_the_modules_of_features_in_use_are_looked_up() -> None:
    """A module lookup reads the disk, and every start, checkconfig and reload validates."""
    looked_up: list[str] = []

    def recording(module: str) -> bool:
        looked_up.append(module)
        return True

    assert missing_extras(Config(), recording) == []
    assert looked_up == []
    missing_extras(with_types(broker="nats"), recording)
    assert looked_up == ["nats"]


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


def keys_refused(config: Config) -> list[str]:
    return [problem.split(":")[0] for problem in missing_extras(config, nothing_installed)]


def test_grpc_is_refused_by_the_key_that_needs_it() -> None:
    config = Config()
    api = replace(config, grpc_api=replace(config.grpc_api, enabled=True))
    assert keys_refused(api) == ["grpc_api.enabled"]
    assert "pip install 'rotary[grpc]'" in missing_extras(api, nothing_installed)[0]
    uni = replace(config, uni_grpc=replace(config.uni_grpc, enabled=True))
    assert keys_refused(uni) == ["uni_grpc.enabled"]


def test_grpc_proxies_need_the_extra_and_http_proxies_do_not() -> None:
    config = Config()

    def with_connect_proxy(endpoint: str) -> Config:
        proxies = config.client.proxy
        connect = replace(proxies.connect, enabled=True, endpoint=endpoint)
        return replace(config, client=replace(config.client, proxy=replace(proxies, connect=connect)))

    assert keys_refused(with_connect_proxy("grpc://127.0.0.1:10000")) == ["client.proxy.connect.endpoint"]
    assert keys_refused(with_connect_proxy("127.0.0.1:10000")) == ["client.proxy.connect.endpoint"]
    assert keys_refused(with_connect_proxy("http://127.0.0.1:8000/connect")) == []
    named = NamedProxyConfig(name="streams", endpoint="grpc://b:1")
    scope = replace(
        config.channel.without_namespace,
        subscribe_stream_proxy_enabled=True,
        subscribe_stream_proxy_name="streams",
    )
    streaming = replace(config, proxies=(named,), channel=replace(config.channel, without_namespace=scope))
    assert keys_refused(streaming) == ["proxies (streams).endpoint"]


def test_http3_and_webtransport_are_refused_without_aioquic() -> None:
    config = Config()
    webtransport = replace(config, webtransport=replace(config.webtransport, enabled=True))
    assert keys_refused(webtransport) == ["webtransport.enabled"]
    http = replace(config.http_server, http3=replace(config.http_server.http3, enabled=True))
    assert keys_refused(replace(webtransport, http_server=http)) == ["http_server.http3.enabled"]
    assert "pip install 'rotary[http3]'" in missing_extras(webtransport, nothing_installed)[0]
