from dataclasses import replace

from rotary.server.config.schema import (
    ChannelConfig,
    ClientConfig,
    Config,
    NamedProxyConfig,
    NamespaceConfig,
)
from rotary.server.config.schema_transports import TLSConfig
from rotary.server.config.validate import validate


def test_defaults_are_valid() -> None:
    assert validate(Config()) == []


def test_many_problems_at_once() -> None:
    namespaces = (
        NamespaceConfig(name="chat", history_size=10),
        NamespaceConfig(name="chat"),
        NamespaceConfig(name="x"),
        NamespaceConfig(name="news", history_size=1, history_ttl=3600 * 1000),
        NamespaceConfig(name="rec", force_recovery=True),
        NamespaceConfig(name="bad", force_recovery_mode="nope", allowed_delta_types=("zip",)),
        NamespaceConfig(name="px", subscribe_proxy_name="missing"),
        NamespaceConfig(name="st", subscribe_stream_proxy_enabled=True, publish_proxy_enabled=True),
    )
    config = Config(
        client=ClientConfig(ping_interval=5.0, pong_timeout=8.0),
        channel=ChannelConfig(namespaces=namespaces),
        proxies=(NamedProxyConfig(name="default"), NamedProxyConfig(name="p1", endpoint="http://x")),
    )
    config = replace(config, broker=replace(config.broker, type="kafka"))
    problems = validate(config)
    expected = [
        "client.ping_interval",
        "broker.type",
        "proxies[0].name",
        "proxies[0].endpoint",
        "channel.namespaces: duplicate name 'chat'",
        "channel.namespaces[0].history_size",
        "channel.namespaces[2].name",
        "channel.namespaces[3].history_ttl",
        "channel.namespaces[4].force_recovery",
        "channel.namespaces[5].force_recovery_mode",
        "channel.namespaces[5].allowed_delta_types",
        "channel.namespaces[6].subscribe_proxy_name",
        "channel.namespaces[7].subscribe_stream_proxy_enabled",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)


def test_personal_channel_single_connection_needs_presence() -> None:
    client = ClientConfig()
    personal = replace(
        client.subscribe_to_user_personal_channel,
        enabled=True,
        single_connection=True,
        personal_channel_namespace="users",
    )
    config = Config(
        client=replace(client, subscribe_to_user_personal_channel=personal),
        channel=ChannelConfig(namespaces=(NamespaceConfig(name="users"),)),
    )
    assert validate(config) == [
        "client.subscribe_to_user_personal_channel.single_connection: "
        "needs presence in the personal channel namespace"
    ]


def test_unreadable_server_tls_material_names_its_key() -> None:
    config = Config()
    tls = TLSConfig(enabled=True, cert_pem="/nonexistent/cert.pem", key_pem="")
    config = replace(config, uni_grpc=replace(config.uni_grpc, enabled=True, tls=tls))
    problems = validate(config)
    assert any(p.startswith("uni_grpc.tls.cert_pem: not PEM text") for p in problems), problems
    assert "uni_grpc.tls.key_pem: not set" in problems
