"""TLS sections as Centrifugo reads them: every PEM spelling works, unusable material is refused at
validation naming its key, and each listener gets the context Centrifugo would give it
(https://centrifugal.dev/docs/server/tls)."""

from __future__ import annotations

import base64
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.certs import TestCA

from rotary.server.config.load import parse_config
from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import TLSConfig
from rotary.server.config.validate import validate
from rotary.server.tls.context import client_tls, server_context
from rotary.server.tls.listeners import listener_tls


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


def spellings(pem: bytes, path: Path) -> list[str]:
    """The three ways a config may give PEM material: the text, its base64, a file path."""
    path.write_bytes(pem)
    return [pem.decode(), base64.b64encode(pem).decode(), str(path)]


def with_http(config: Config, **sections: TLSConfig | bool | str) -> Config:
    return replace(config, http_server=replace(config.http_server, **sections))  # type: ignore[arg-type]


def redis_engine(**sections: TLSConfig) -> Config:
    config = Config()
    engine = replace(config.engine, type="redis", redis=replace(config.engine.redis, **sections))
    return replace(config, engine=engine)


@pytest.mark.parametrize("spelling", [0, 1, 2], ids=["pem", "base64", "path"])
def test_server_tls_every_spelling(ca: TestCA, tmp_path: Path, spelling: int) -> None:
    issued = ca.issue("server")
    cert = spellings(issued.cert_pem, tmp_path / "c.pem")[spelling]
    key = spellings(issued.key_pem, tmp_path / "k.pem")[spelling]
    client_ca = spellings(ca.cert_pem, tmp_path / "ca.pem")[spelling]
    tls = TLSConfig(enabled=True, cert_pem=cert, key_pem=key, client_ca_pem=client_ca)
    config = with_http(Config(), tls=tls, internal_tls=tls)
    assert validate(config) == []
    context = server_context(tls)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2  # as Centrifugo's MinVersion
    assert context.verify_mode is ssl.CERT_REQUIRED  # client_ca_pem turns mutual TLS on


def test_server_tls_refusals_name_their_keys(ca: TestCA) -> None:
    missing = TLSConfig(enabled=True)
    mismatched = TLSConfig(
        enabled=True, cert_pem=ca.issue("a").cert_pem.decode(), key_pem=ca.issue("b").key_pem.decode()
    )
    problems = validate(with_http(Config(), tls=missing, internal_tls=mismatched))
    assert problems[:2] == ["http_server.tls.cert_pem: not set", "http_server.tls.key_pem: not set"]
    assert problems[2].startswith("http_server.internal_tls: cannot use this certificate material")
    assert len(problems) == 3


def test_listener_contexts_follow_centrifugo(ca: TestCA) -> None:
    issued = ca.issue("server")
    tls = TLSConfig(enabled=True, cert_pem=issued.cert_pem.decode(), key_pem=issued.key_pem.decode())
    plain = listener_tls(Config().http_server)
    assert (plain.external, plain.internal) == (None, None)
    both = listener_tls(with_http(Config(), tls=tls).http_server)
    assert both.external is not None and both.internal is both.external
    external_only = listener_tls(with_http(Config(), tls=tls, tls_external=True).http_server)
    assert external_only.external is not None and external_only.internal is None
    own = listener_tls(with_http(Config(), tls=tls, tls_external=True, internal_tls=tls).http_server)
    assert own.internal is not None and own.internal is not own.external


@pytest.mark.parametrize("spelling", [0, 1, 2], ids=["pem", "base64", "path"])
def test_redis_tls_every_spelling(ca: TestCA, tmp_path: Path, spelling: int) -> None:
    issued = ca.issue("client", client=True)
    tls = TLSConfig(
        enabled=True,
        cert_pem=spellings(issued.cert_pem, tmp_path / "c.pem")[spelling],
        key_pem=spellings(issued.key_pem, tmp_path / "k.pem")[spelling],
        server_ca_pem=spellings(ca.cert_pem, tmp_path / "ca.pem")[spelling],
        server_name="redis.internal",
    )
    assert validate(redis_engine(tls=tls, sentinel_tls=tls)) == []
    built = client_tls(tls)
    assert built.server_name == "redis.internal"
    assert built.context.verify_mode is ssl.CERT_REQUIRED and built.context.check_hostname


def test_client_tls_refusals_name_their_keys(tmp_path: Path) -> None:
    bad = TLSConfig(
        enabled=True, server_ca_pem=str(tmp_path / "missing.pem"), cert_pem="not pem", key_pem="x"
    )
    problems = validate(redis_engine(sentinel_tls=bad))
    keys = [problem.split(":")[0] for problem in problems]
    assert keys == [
        "engine.redis.sentinel_tls.server_ca_pem",
        "engine.redis.sentinel_tls.cert_pem",
        "engine.redis.sentinel_tls.key_pem",
    ]
    config = Config()
    nats = replace(config.broker, enabled=True, type="nats", nats=replace(config.broker.nats, tls=bad))
    keys = [problem.split(":")[0] for problem in validate(replace(config, broker=nats))]
    assert keys == ["broker.nats.tls.server_ca_pem", "broker.nats.tls.cert_pem", "broker.nats.tls.key_pem"]


def test_client_tls_of_unused_engines_is_not_read(tmp_path: Path) -> None:
    """Centrifugo builds TLS only for the engines it uses; neither does rotary read the others."""
    bad = TLSConfig(enabled=True, server_ca_pem=str(tmp_path / "missing.pem"))
    config = Config()
    config = replace(config, engine=replace(config.engine, redis=replace(config.engine.redis, tls=bad)))
    assert validate(config) == []


def test_insecure_skip_verify_turns_verification_off() -> None:
    built = client_tls(TLSConfig(enabled=True, insecure_skip_verify=True))
    assert built.context.verify_mode is ssl.CERT_NONE and not built.context.check_hostname


def test_http_server_tls_unread_under_autocert() -> None:
    """Centrifugo takes certificates from ACME when tls_autocert is on, and never reads http_server.tls."""
    config = with_http(Config(), tls=TLSConfig(enabled=True))
    http = config.http_server
    autocert = replace(http.tls_autocert, enabled=True, http=True, http_addr="127.0.0.1:8080")
    assert validate(replace(config, http_server=replace(http, tls_autocert=autocert))) == []


def test_redis_address_tls_flags_read_as_go_booleans() -> None:
    """``?tls_enabled=`` and ``?sentinel_tls_enabled=`` take Go's boolean spellings; anything else
    (and a port that is not a number) refuses the start naming the address."""
    good = (
        "redis://127.0.0.1:6379?tls_enabled=true",
        "redis+sentinel://s?sentinel_master_name=m&sentinel_tls_enabled=F",
    )
    bad = ("redis://127.0.0.1:6379?tls_enabled=yes", "127.0.0.1:port")
    config = Config()
    engine = replace(config.engine, type="redis", redis=replace(config.engine.redis, address=good + bad))
    assert validate(replace(config, engine=engine)) == [
        "engine.redis.address[2]: invalid tls_enabled value: 'yes'",
        "engine.redis.address[3]: not a port number: 'port'",
    ]


def test_acme_directory_variable_is_known() -> None:
    """rotary's own ROTARY_ACME_DIRECTORY_URL matches no config key yet draws no warning."""
    environ = {"ROTARY_ACME_DIRECTORY_URL": "https://127.0.0.1:14000/dir", "ROTARY_NO_SUCH_KEY": "1"}
    warnings = parse_config("", environ).warnings
    assert warnings == ["unknown environment variable: ROTARY_NO_SUCH_KEY"]


def test_redis_cluster_and_sentinel_entries_take_no_url() -> None:
    """A cluster_address or sentinel_address entry is one shard, comma-separated ``host:port``
    seeds; Centrifugo refuses a URL there (its ``?db=``, TLS, credentials and timeouts would be
    dropped), and so does rotary, naming the entry."""
    config = Config()
    redis = replace(
        config.engine.redis,
        cluster_address=("127.0.0.1:7000,[::1]:7001", "redis://127.0.0.1:7000?db=1"),
        sentinel_address=("127.0.0.1:26379", "rediss://127.0.0.1:26379", "sentinel"),
        sentinel_master_name="m",
    )
    problems = validate(replace(config, engine=replace(config.engine, type="redis", redis=redis)))
    assert [problem.split(": malformed address")[0] for problem in problems] == [
        "engine.redis.cluster_address[1]",
        "engine.redis.sentinel_address[1]",
        "engine.redis.sentinel_address[2]",
    ]
