import json
import re
from pathlib import Path

import pytest
import yaml

from rotary.server.config import ConfigError
from rotary.server.config.dump import env_lines, render, to_tree
from rotary.server.config.env import EnvReader
from rotary.server.config.load import load_config, parse_config
from rotary.server.config.schema import Config

SAMPLE = {
    "http_server": {"port": 9000},
    "client": {"token": {"hmac_secret_key": "secret"}, "allowed_origins": ["http://a", "http://b"]},
    "channel": {
        "namespaces": [{"name": "chat", "presence": True, "history_size": 10, "history_ttl": "300s"}],
    },
    "proxies": [{"name": "backend", "endpoint": "http://localhost:3000", "timeout": "2s"}],
}

TOML_SAMPLE = """
[http_server]
port = 9000

[client]
allowed_origins = ["http://a", "http://b"]

[client.token]
hmac_secret_key = "secret"

[[channel.namespaces]]
name = "chat"
presence = true
history_size = 10
history_ttl = "300s"

[[proxies]]
name = "backend"
endpoint = "http://localhost:3000"
timeout = "2s"
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_three_formats_give_the_same_config(tmp_path: Path) -> None:
    configs = [
        parse_config(write(tmp_path, "c.json", json.dumps(SAMPLE)), {}).config,
        parse_config(write(tmp_path, "c.yaml", yaml.safe_dump(SAMPLE)), {}).config,
        parse_config(write(tmp_path, "c.toml", TOML_SAMPLE), {}).config,
    ]
    assert configs[0] == configs[1] == configs[2]
    config = configs[0]
    assert config.http_server.port == 9000
    assert config.client.allowed_origins == ("http://a", "http://b")
    assert config.channel.namespaces[0].history_ttl == 300.0
    assert config.proxies[0].timeout == 2.0


def test_parsed_proxies_load(tmp_path: Path) -> None:
    """The samples above parse, proxies included, and a server starts with them."""
    config = load_config(write(tmp_path, "c.json", json.dumps(SAMPLE)), {}).config
    assert config.proxies[0].timeout == 2.0


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", json.dumps({"http_server": {"port": 1001}, "log": {"level": "debug"}}))
    env = {"CENTRIFUGO_HTTP_SERVER_PORT": "1002", "CENTRIFUGO_LOG_LEVEL": "error"}
    config = load_config(path, env, {"http_server.port": 1003}).config
    assert config.http_server.port == 1003
    assert config.log.level == "error"
    assert load_config(path, {}, {}).config.log.level == "debug"
    assert load_config(path, {"CENTRIFUGO_LOG_LEVEL": ""}, {}).config.log.level == "debug"


def test_env_naming_rules() -> None:
    env = {
        "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY": "s",
        "CENTRIFUGO_CLIENT_ALLOWED_ORIGINS": "http://a http://b",
        "CENTRIFUGO_CLIENT_INSECURE": "1",
        "CENTRIFUGO_CLIENT_PING_INTERVAL": "30s",
        "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_PRESENCE": "true",
        "CENTRIFUGO_CHANNEL_NAMESPACES": json.dumps([{"name": "my-chat.ns"}]),
        "CENTRIFUGO_CHANNEL_NAMESPACES_MY_CHAT_NS_HISTORY_SIZE": "5",
        "CENTRIFUGO_CHANNEL_NAMESPACES_MY_CHAT_NS_HISTORY_TTL": "10s",
        "CENTRIFUGO_RPC_NAMESPACES": json.dumps([{"name": "rpc1"}]),
        "CENTRIFUGO_RPC_NAMESPACES_RPC1_PROXY_ENABLED": "true",
        "CENTRIFUGO_PROXIES": json.dumps([{"name": "p1", "endpoint": "http://x"}]),
        "CENTRIFUGO_PROXIES_P1_TIMEOUT": "3s",
        "CENTRIFUGO_PROXIES_P1_HTTP_STATIC_HEADERS": '{"X-A": "b"}',
        "CENTRIFUGO_ENGINE_REDIS_ADDRESS": "redis://a:1 redis://b:2",
        "CENTRIFUGO_BROKER_POSTGRES_DSN": "postgres://x",
        "CENTRIFUGO_BROKER_POSTGRES_OUTBOX_POLL_INTERVAL": "1s",
        "CENTRIFUGO_BROKER_REDISNATS_REDIS_DB": "3",
    }
    config = parse_config(None, env).config
    assert config.client.token.hmac_secret_key == "s"
    assert config.client.allowed_origins == ("http://a", "http://b")
    assert config.client.insecure is True
    assert config.client.ping_interval == 30.0
    assert config.channel.without_namespace.presence is True
    ns = config.channel.namespaces[0]
    assert (ns.name, ns.history_size, ns.history_ttl) == ("my-chat.ns", 5, 10.0)
    assert config.rpc.namespaces[0].proxy_enabled is True
    assert config.proxies[0].timeout == 3.0
    assert config.proxies[0].http.static_headers == {"X-A": "b"}
    assert config.engine.redis.address == ("redis://a:1", "redis://b:2")
    assert config.broker.postgres.dsn == "postgres://x"
    assert config.broker.postgres.outbox.poll_interval == 1.0
    assert config.broker.redisnats is not None
    assert config.broker.redisnats.redis.db == 3


def test_rotary_prefix_wins() -> None:
    env = {"CENTRIFUGO_HTTP_SERVER_PORT": "1", "ROTARY_HTTP_SERVER_PORT": "2", "ROTARY_LOG_LEVEL": "warn"}
    config = load_config(None, env).config
    assert config.http_server.port == 2
    assert config.log.level == "warn"


def test_env_problems_follow_the_schema_whatever_the_order_of_the_environment() -> None:
    env = {
        "CENTRIFUGO_CHANNEL_NAMESPACES_AB_ALLOWED_DELTA_TYPES": "x",
        "CENTRIFUGO_CHANNEL_NAMESPACES": "ab",
        "ROTARY_CHANNEL_NAMESPACES_AB_PRESENCE": "maybe",
        "CENTRIFUGO_CHANNEL_NAMESPACES_AB_PRESENCE": "true",
        "CENTRIFUGO_CLIENT_ALLOWED_ORIGINS": "",
        "CENTRIFUGO_HTTP_SERVER_PORT": "x",
        "CENTRIFUGO_CLIENT_TOKEN_JWKS_PUBLIC_ENDPOINT": "",
        "CENTRIFUGO_CLIENT_PING_INTERVAL": "soon",
        "CENTRIFUGO_LOG_LEVEL": "debug",
        "CENTRIFUGO_CONSUMERS": "[{",
        "CENTRIFUGO_PROXIES": "[{",
    }
    reversed_env = dict(reversed(env.items()))
    problems = []
    for environ in (env, reversed_env):
        with pytest.raises(ConfigError) as caught:
            parse_config("", environ)
        problems.append(caught.value.problems)
    assert problems[0] == problems[1]
    assert [problem.split(":")[0] for problem in problems[0]] == [
        "proxies (from CENTRIFUGO_PROXIES)",
        "consumers (from CENTRIFUGO_CONSUMERS)",
        "http_server.port",
        "client.ping_interval",
        "channel.namespaces[0].presence",
    ]


def test_unknown_keys_and_env_warned(tmp_path: Path) -> None:
    raw = {"nope": 1, "client": {"bogus": True}, "channel": {"namespaces": [{"name": "ab", "x": 1}]}}
    path = write(tmp_path, "c.json", json.dumps(raw))
    env = {
        "CENTRIFUGO_UNKNOWN_THING": "1",
        "ROTARY_ALSO_UNKNOWN": "1",
        "CENTRIFUGO_SERVICE_PORT": "80",
        "CENTRIFUGO_API_SERVICE_HOST": "x",
        "CENTRIFUGO_VAR_SECRET": "s",
    }
    result = load_config(path, env)
    assert result.unknown_keys == ["nope", "client.bogus", "channel.namespaces[0].x"]
    assert "unknown key in config: client.bogus" in result.warnings
    assert "unknown environment variable: CENTRIFUGO_UNKNOWN_THING" in result.warnings
    assert "unknown environment variable: ROTARY_ALSO_UNKNOWN" in result.warnings
    assert not [w for w in result.warnings if "SERVICE" in w or "VAR_" in w]


def test_real_centrifugo_config_loads_without_warnings(tmp_path: Path) -> None:
    full = to_tree(Config())
    path = write(tmp_path, "full.json", json.dumps(full))
    result = load_config(path, {})
    assert result.warnings == []
    assert result.config == Config()


def test_optional_section_is_dumped_only_when_set(tmp_path: Path) -> None:
    """broker.redisnats, like Centrifugo's omitempty pointer: absent from dumps until a key sets it,
    while the env listing names its keys all the same."""
    assert "redisnats" not in to_tree(Config())["broker"]
    assert 'CENTRIFUGO_BROKER_REDISNATS_NATS_URL="nats://localhost:4222"' in env_lines(Config())
    raw = {"broker": {"redisnats": {"nats": {"prefix": "x"}}}}
    config = parse_config(write(tmp_path, "c.json", json.dumps(raw)), {}).config
    tree = to_tree(config)["broker"]["redisnats"]
    assert tree["nats"]["prefix"] == "x"
    assert tree["redis"]["address"] == ["redis://127.0.0.1:6379"]


@pytest.mark.parametrize("ext", ["json", "yaml", "toml"])
def test_defaultconfig_round_trips(tmp_path: Path, ext: str) -> None:
    base = parse_config(write(tmp_path, "base.json", json.dumps(SAMPLE)), {}).config
    path = write(tmp_path, f"out.{ext}", render(to_tree(base), ext))
    assert parse_config(path, {}).config == base


def test_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None, {}).config == Config()
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "absent.json"), {})
    assert "config file not found" in info.value.problems[0]


def test_all_problems_reported_with_paths(tmp_path: Path) -> None:
    raw = {
        "http_server": {"port": "not-a-port"},
        "client": {"ping_interval": "5", "token": {"user_id_claim": "bad-claim"}},
        "websocket": {"write_timeout": True},
    }
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "c.json", json.dumps(raw)), {"CENTRIFUGO_CHANNEL_NAMESPACES": "[oops"})
    text = "\n".join(info.value.problems)
    paths = ("http_server.port", "client.ping_interval", "client.token.user_id_claim")
    for path in (*paths, "websocket.write_timeout", "channel.namespaces"):
        assert path in text
    assert len(info.value.problems) == 5


def test_numbers_are_nanoseconds_for_durations(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", json.dumps({"shutdown": {"timeout": 2_000_000_000}}))
    assert load_config(path, {}).config.shutdown.timeout == 2.0


def test_namespace_names_may_be_space_separated_in_env() -> None:
    env = {
        "CENTRIFUGO_CHANNEL_NAMESPACES": "smallhistory example",
        "CENTRIFUGO_CHANNEL_NAMESPACES_SMALLHISTORY_HISTORY_SIZE": "2",
        "CENTRIFUGO_CHANNEL_NAMESPACES_SMALLHISTORY_HISTORY_TTL": "300s",
    }
    config = load_config("", env, {}).config
    assert [ns.name for ns in config.channel.namespaces] == ["smallhistory", "example"]
    assert config.channel.namespaces[0].history_size == 2


def test_string_maps_take_centrifugo_var_references(tmp_path: Path) -> None:
    raw = {
        "proxies": [
            {
                "name": "p",
                "endpoint": "http://127.0.0.1:1",
                "http": {"static_headers": [{"key": "Authorization", "value": "Bearer ${CENTRIFUGO_VAR_T}"}]},
            }
        ],
        "broker": {"nats": {"raw_mode": {"channel_replacements": {":": "${CENTRIFUGO_VAR_SEP}${HOME}"}}}},
    }
    path = write(tmp_path, "c.json", json.dumps(raw))
    env = {"CENTRIFUGO_VAR_T": "secret", "CENTRIFUGO_VAR_SEP": "."}
    config = parse_config(path, env).config
    assert config.proxies[0].http.static_headers == {"Authorization": "Bearer secret"}
    assert config.broker.nats.raw_mode.channel_replacements == {":": ".${HOME}"}  # other names stay
    env_map = {"CENTRIFUGO_BROKER_NATS_RAW_MODE_CHANNEL_REPLACEMENTS": '{"x": "${CENTRIFUGO_VAR_SEP}"}'}
    from_env = parse_config("", {**env, **env_map}).config
    assert from_env.broker.nats.raw_mode.channel_replacements == {"x": "."}
    with pytest.raises(ConfigError) as caught:
        parse_config(path, {"CENTRIFUGO_VAR_T": "secret"})
    assert caught.value.problems == [
        'broker.nats.raw_mode.channel_replacements: environment variable "CENTRIFUGO_VAR_SEP" not found'
    ]


def test_the_worker_marker_is_no_unknown_variable() -> None:
    warnings = load_config(None, {"ROTARY_WORKER": "1"}).warnings
    assert not [w for w in warnings if "ROTARY_WORKER" in w]


def test_the_packaging_flags_are_no_unknown_variable() -> None:
    warnings = load_config(None, {"ROTARY_OPTS": "--workers 0"}).warnings
    assert not [w for w in warnings if "ROTARY_OPTS" in w]


def test_no_test_or_kit_knob_is_named_as_if_rotary_read_it() -> None:
    """Knobs of the suite, the benchmarks and the reliability kit reach the rotary processes they
    start, where a ``ROTARY_`` name rotary does not read is warned as unknown: they use other
    prefixes (RELIABILITY_, BENCH_). Knobs passed only to node scripts are no concern here."""
    root = Path(__file__).parents[4]
    read = re.compile(r"environ(?:\.get\(|\[)\s*\"(ROTARY_[A-Z0-9_]+)\"")
    names = {
        name
        for folder in ("tests", "bench", "reliability")
        for path in (root / folder).rglob("*.py")
        for name in read.findall(path.read_text())
    }
    reader = EnvReader(dict.fromkeys(names, ""))  # empty values: names only, nothing applied
    reader.apply({})
    assert reader.unknown() == []
