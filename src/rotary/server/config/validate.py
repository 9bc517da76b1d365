"""Rules across keys that decide whether a loaded config can run; every problem comes back at once.

Each problem starts with the key path it is about, so a user can fix a config in one go instead of
one failed start at a time.
See https://centrifugal.dev/docs/server/configuration and https://centrifugal.dev/docs/server/channels
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from rotary.server.config.extras import installed, missing_extras
from rotary.server.config.schema import ChannelOptions, Config, ProxyConfig, RpcOptions
from rotary.server.config.schema_channels import HttpStatusToCodeTransform
from rotary.server.config.unbuilt import unbuilt_problems
from rotary.server.pem import PemError, read_pem

NAME_PATTERN = re.compile(r"[-a-zA-Z0-9_.]{2,}")
CONSUMER_NAME_PATTERN = re.compile(r"[a-zA-Z0-9_]{2,}")
DEFAULT_PROXY = "default"

KNOWN = {
    "broker.type": ("memory", "nats", "redis", "redisnats", "postgres"),
    "engine.type": ("memory", "redis"),
    "presence_manager.type": ("memory", "redis"),
    "map_broker.type": ("memory", "redis", "postgres"),
    "consumer type": (
        "postgresql",
        "kafka",
        "nats_jetstream",
        "google_pub_sub",
        "aws_sqs",
        "azure_service_bus",
        "redis_stream",
    ),
    "publication_data_format": ("", "json", "json_object", "binary"),
    "force_recovery_mode": ("", "stream", "cache"),
    "allowed_delta_types": ("fossil",),
    "subscription_type": ("", "stream", "map", "map_clients", "map_users", "shared_poll"),
    "map.mode": ("", "ephemeral", "recoverable", "persistent"),
    "error_mode": ("", "transport"),
}

# (option enabling a proxy, option naming it, channel.proxy.<kind> used when the name is `default`)
CHANNEL_PROXIES = (
    ("subscribe_proxy_enabled", "subscribe_proxy_name", "subscribe"),
    ("publish_proxy_enabled", "publish_proxy_name", "publish"),
    ("sub_refresh_proxy_enabled", "sub_refresh_proxy_name", "sub_refresh"),
    ("subscribe_stream_proxy_enabled", "subscribe_stream_proxy_name", "subscribe_stream"),
)

Report = Callable[[str], None]


def validate(config: Config) -> list[str]:
    """Every problem of ``config``, each prefixed with its key path; empty when it can run."""
    problems: list[str] = []
    for rule in RULES:
        rule(config, problems.append)
    return problems


def _one_of(value: str, table: str, path: str, report: Report) -> None:
    if value not in KNOWN[table]:
        choices = ", ".join(repr(v) for v in KNOWN[table] if v)
        report(f"{path}: unknown value {value!r} (known: {choices})")


def check_server(config: Config, report: Report) -> None:
    http = config.http_server
    if http.h2c_external and (not http.internal_port or http.internal_port == str(http.port)):
        report("http_server.h2c_external: requires a separate http_server.internal_port")
    if http.h2c_external and http.tls.enabled:
        report("http_server.h2c_external: cannot be combined with http_server.tls.enabled")
    if http.internal_port and not http.internal_port.isdigit():
        report(f"http_server.internal_port: must be a port number, got {http.internal_port!r}")
    client = config.client
    if client.ping_interval <= client.pong_timeout:
        report("client.ping_interval: must be greater than client.pong_timeout")
    for key in ("broker.type", "engine.type", "presence_manager.type", "map_broker.type"):
        section, field = key.split(".")
        _one_of(getattr(getattr(config, section), field), key, key, report)
    _one_of(config.http_api.error_mode, "error_mode", "http_api.error_mode", report)
    _one_of(config.grpc_api.error_mode, "error_mode", "grpc_api.error_mode", report)


def check_client_proxies(config: Config, report: Report) -> None:
    for kind in ("connect", "refresh"):
        proxy = getattr(config.client.proxy, kind)
        if proxy.enabled:
            _check_proxy(proxy, f"client.proxy.{kind}", report)


def check_named_proxies(config: Config, report: Report) -> None:
    _check_unique((p.name for p in config.proxies), "proxies", report)
    for i, proxy in enumerate(config.proxies):
        path = f"proxies[{i}]"
        if proxy.name == DEFAULT_PROXY:
            report(f"{path}.name: the name {DEFAULT_PROXY!r} is reserved")
        elif not NAME_PATTERN.fullmatch(proxy.name):
            report(f"{path}.name: invalid proxy name {proxy.name!r}, must match ^[-a-zA-Z0-9_.]{{2,}}$")
        _check_proxy(proxy, path, report)


def _check_proxy(proxy: ProxyConfig, path: str, report: Report) -> None:
    if proxy.timeout <= 0:
        report(f"{path}.timeout: not set")
    if not proxy.endpoint:
        report(f"{path}.endpoint: not set")
    for i, rule in enumerate(proxy.http.status_to_code_transforms):
        _check_status_transform(rule, f"{path}.http.status_to_code_transforms[{i}]", report)
    for section in ("http", "grpc"):
        tls = getattr(proxy, section).tls
        for key in ("cert_pem", "key_pem", "server_ca_pem") if tls.enabled else ():
            value = getattr(tls, key)
            try:
                if value:
                    read_pem(value)
            except PemError as exc:
                report(f"{path}.{section}.tls.{key}: {exc}")


def _check_status_transform(rule: HttpStatusToCodeTransform, path: str, report: Report) -> None:
    if rule.status_code == 0:
        report(f"{path}.status_code: not set")
    has_error, has_disconnect = rule.to_error.code > 0, rule.to_disconnect.code > 0
    if has_error == has_disconnect:
        report(f"{path}: set exactly one of to_error.code and to_disconnect.code")
    texts = ((rule.to_error.message, "to_error.message"), (rule.to_disconnect.reason, "to_disconnect.reason"))
    for text, key in texts:
        if not text.isascii() or len(text) > 123:
            report(f"{path}.{key}: must be ASCII and at most 123 characters")


def check_channels(config: Config, report: Report) -> None:
    channel = config.channel
    _second_precision(channel.history_meta_ttl, "channel.history_meta_ttl", report)
    data_format = channel.publication_data_format
    _one_of(data_format, "publication_data_format", "channel.publication_data_format", report)
    proxy_names = {p.name for p in config.proxies} | {DEFAULT_PROXY}
    top = channel.without_namespace
    _check_channel_options(top, "channel.without_namespace", config, proxy_names, report)
    _check_unique((ns.name for ns in channel.namespaces), "channel.namespaces", report)
    for i, ns in enumerate(channel.namespaces):
        path = f"channel.namespaces[{i}]"
        if not NAME_PATTERN.fullmatch(ns.name):
            report(f"{path}.name: invalid namespace name {ns.name!r}, must match ^[-a-zA-Z0-9_.]{{2,}}$")
        _check_channel_options(ns, path, config, proxy_names, report)


def _stream_endpoint(opts: ChannelOptions, config: Config) -> str:
    name = opts.subscribe_stream_proxy_name
    if name == DEFAULT_PROXY:
        return config.channel.proxy.subscribe_stream.endpoint
    return next((p.endpoint for p in config.proxies if p.name == name), "")


def _check_channel_options(
    opts: ChannelOptions, path: str, config: Config, proxy_names: set[str], report: Report
) -> None:
    for rule in CHANNEL_OPTION_RULES:
        problem = rule(opts, config)
        if problem:
            report(f"{path}.{problem}")
    for enabled_key, name_key, kind in CHANNEL_PROXIES:
        name = getattr(opts, name_key)
        if name and name not in proxy_names:
            report(f"{path}.{name_key}: proxy {name!r} not found")
        elif getattr(opts, enabled_key) and name == DEFAULT_PROXY:
            _check_proxy(getattr(config.channel.proxy, kind), f"channel.proxy.{kind}", report)
    if opts.subscribe_stream_proxy_enabled and _stream_endpoint(opts, config).startswith("http"):
        report(f"{path}.subscribe_stream_proxy_name: the subscribe stream proxy needs a GRPC endpoint")
    data_format = opts.publication_data_format
    _one_of(data_format, "publication_data_format", f"{path}.publication_data_format", report)
    _one_of(opts.force_recovery_mode, "force_recovery_mode", f"{path}.force_recovery_mode", report)
    _one_of(opts.subscription_type, "subscription_type", f"{path}.subscription_type", report)
    _one_of(opts.map.mode, "map.mode", f"{path}.map.mode", report)
    for delta in opts.allowed_delta_types:
        _one_of(delta, "allowed_delta_types", f"{path}.allowed_delta_types", report)
    _second_precision(opts.history_ttl, f"{path}.history_ttl", report)
    _second_precision(opts.history_meta_ttl, f"{path}.history_meta_ttl", report)


def _history_pairing(opts: ChannelOptions, config: Config) -> str | None:
    if (opts.history_size > 0) != (opts.history_ttl > 0):
        return "history_size: history_size and history_ttl must be set together"
    return None


def _history_ttl_limit(opts: ChannelOptions, config: Config) -> str | None:
    meta_ttl = opts.history_meta_ttl or config.channel.history_meta_ttl
    if opts.history_ttl > meta_ttl:
        return "history_ttl: must not be greater than history_meta_ttl"
    return None


def _recovery_needs_history(opts: ChannelOptions, config: Config) -> str | None:
    if opts.force_recovery and not (opts.history_size and opts.history_ttl):
        return "force_recovery: recovery needs history_size and history_ttl"
    return None


def _auto_cache_recover(opts: ChannelOptions, config: Config) -> str | None:
    if opts.auto_cache_recover and not (opts.force_recovery and opts.force_recovery_mode == "cache"):
        return "auto_cache_recover: needs force_recovery with force_recovery_mode `cache`"
    return None


def _stream_proxy_alone(opts: ChannelOptions, config: Config) -> str | None:
    others = opts.subscribe_proxy_enabled or opts.publish_proxy_enabled or opts.sub_refresh_proxy_enabled
    if opts.subscribe_stream_proxy_enabled and others:
        return "subscribe_stream_proxy_enabled: not allowed with subscribe, publish or sub_refresh proxies"
    return None


def _channel_regex(opts: ChannelOptions, config: Config) -> str | None:
    if opts.channel_regex:
        try:
            re.compile(opts.channel_regex)
        except re.error as exc:
            return f"channel_regex: invalid regular expression: {exc}"
    return None


def _shared_poll_secret(opts: ChannelOptions, config: Config) -> str | None:
    if opts.subscription_type == "shared_poll" and not config.shared_poll.hmac_secret_key:
        return "subscription_type: `shared_poll` needs shared_poll.hmac_secret_key"
    return None


def _map_needs_mode(opts: ChannelOptions, config: Config) -> str | None:
    if opts.subscription_type.startswith("map") and not opts.map.mode:
        return "map.mode: required when subscription_type is a map type"
    return None


CHANNEL_OPTION_RULES: tuple[Callable[[ChannelOptions, Config], str | None], ...] = (
    _history_pairing,
    _history_ttl_limit,
    _recovery_needs_history,
    _auto_cache_recover,
    _stream_proxy_alone,
    _channel_regex,
    _shared_poll_secret,
    _map_needs_mode,
)


def check_personal_channel(config: Config, report: Report) -> None:
    personal = config.client.subscribe_to_user_personal_channel
    if not personal.enabled:
        return
    path = "client.subscribe_to_user_personal_channel"
    name = personal.personal_channel_namespace
    if not name:
        opts: ChannelOptions | None = config.channel.without_namespace
    else:
        opts = next((ns for ns in config.channel.namespaces if ns.name == name), None)
    if opts is None:
        report(f"{path}.personal_channel_namespace: namespace {name!r} not found")
    elif personal.single_connection and not opts.presence:
        report(f"{path}.single_connection: needs presence in the personal channel namespace")


def check_rpc(config: Config, report: Report) -> None:
    proxy_names = {p.name for p in config.proxies} | {DEFAULT_PROXY}
    _check_rpc_options(config.rpc.without_namespace, "rpc.without_namespace", proxy_names, report)
    _check_unique((ns.name for ns in config.rpc.namespaces), "rpc.namespaces", report)
    for i, ns in enumerate(config.rpc.namespaces):
        path = f"rpc.namespaces[{i}]"
        if not NAME_PATTERN.fullmatch(ns.name):
            report(f"{path}.name: invalid rpc namespace name {ns.name!r}, must match ^[-a-zA-Z0-9_.]{{2,}}$")
        _check_rpc_options(ns, path, proxy_names, report)


def _check_rpc_options(opts: RpcOptions, path: str, proxy_names: set[str], report: Report) -> None:
    if opts.proxy_name and opts.proxy_name not in proxy_names:
        report(f"{path}.proxy_name: proxy {opts.proxy_name!r} not found")


def check_consumers(config: Config, report: Report) -> None:
    _check_unique((c.name for c in config.consumers), "consumers", report)
    for i, consumer in enumerate(config.consumers):
        if not CONSUMER_NAME_PATTERN.fullmatch(consumer.name):
            name = consumer.name
            report(f"consumers[{i}].name: invalid consumer name {name!r}, must match ^[a-zA-Z0-9_]{{2,}}$")
        _one_of(consumer.type, "consumer type", f"consumers[{i}].type", report)


def check_transforms(config: Config, report: Report) -> None:
    uni = config.client.connect_code_to_unidirectional_disconnect
    for i, rule in enumerate(uni.transforms):
        path = f"client.connect_code_to_unidirectional_disconnect.transforms[{i}]"
        if rule.code == 0:
            report(f"{path}.code: not set")
        if rule.to.code == 0:
            report(f"{path}.to.code: not set")
        if not rule.to.reason.isascii():
            report(f"{path}.to.reason: must be ASCII")
    for section in ("uni_sse", "uni_http_stream"):
        transforms = getattr(config, section).connect_code_to_http_response.transforms
        for i, item in enumerate(transforms):
            path = f"{section}.connect_code_to_http_response.transforms[{i}]"
            if item.code == 0:
                report(f"{path}.code: not set")
            if item.to.status_code == 0:
                report(f"{path}.to.status_code: not set")


def _check_unique(names: Iterable[str], path: str, report: Report) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            report(f"{path}: duplicate name {name!r}")
        seen.add(name)


def _second_precision(seconds: float, path: str, report: Report) -> None:
    if seconds > 0 and not float(seconds).is_integer():
        report(f"{path}: sub-second precision is not supported for this key")


def check_engines(config: Config, report: Report) -> None:
    """Engine combinations rotary can build (see rotary.server.engines)."""
    from rotary.server.engines import problems

    for problem in problems(config):
        report(problem)


def check_tokens(config: Config, report: Report) -> None:
    """Keys, regexes and JWKS templates the token verifier could not be built from."""
    from rotary.server.tokens.verifier import token_problems

    client = config.client
    found = token_problems(client.token, "client.token")
    if client.subscription_token.enabled:
        found += token_problems(client.subscription_token, "client.subscription_token")
    for problem in found:
        report(problem)


def _redis_sections_in_use(config: Config) -> list[str]:
    from rotary.server.engines import broker_type, presence_type

    sections = []
    if broker_type(config) == "redis":
        sections.append("broker" if config.broker.enabled else "engine")
    if presence_type(config) == "redis":
        sections.append("presence_manager" if config.presence_manager.enabled else "engine")
    return list(dict.fromkeys(sections))


def client_tls_sections(config: Config) -> list[str]:
    """Enabled TLS sections of the engine clients this config uses (towards Redis, Sentinel, NATS)."""
    from rotary.server.engines import broker_type

    paths = [f"{s}.redis.{tls}" for s in _redis_sections_in_use(config) for tls in ("tls", "sentinel_tls")]
    if broker_type(config) == "nats":
        paths.append("broker.nats.tls")
    return [path for path in paths if _section(config, path).enabled]


def check_redis_addresses(config: Config, report: Report) -> None:
    """Redis addresses of the engines in use that cannot be parsed (a port that is not a number, a
    URL flag that is not a boolean, a URL in a cluster or sentinel entry, whose options Centrifugo
    does not read either) refuse the start instead of failing inside the engine."""
    sections = _redis_sections_in_use(config)
    if not sections or not installed("redis"):
        return  # without the redis extra, check_extras refuses the config already
    from rotary.engines.redis.addresses import parse_address, seed_nodes

    for section in sections:
        redis = _section(config, f"{section}.redis")
        for key, parse in (
            ("address", parse_address),
            ("cluster_address", seed_nodes),
            ("sentinel_address", seed_nodes),
        ):
            for index, address in enumerate(getattr(redis, key)):
                try:
                    parse(address)
                except ValueError as exc:
                    report(f"{section}.redis.{key}[{index}]: {exc}")


def check_client_tls(config: Config, report: Report) -> None:
    """TLS material of engine clients that cannot be read or used refuses the start, naming its key."""
    from rotary.server.tls.context import client_tls

    for path in client_tls_sections(config):
        tls = _section(config, path)
        if _readable(tls, path, ("server_ca_pem", "cert_pem", "key_pem"), report):
            _usable(client_tls, tls, path, report)


SERVER_TLS_SECTIONS: tuple[str, ...] = (
    "uni_grpc.tls",
    "grpc_api.tls",
    "http_server.tls",
    "http_server.internal_tls",
)
"""Enabled TLS sections where rotary is the server: each needs a readable certificate and key."""


def check_server_tls(config: Config, report: Report) -> None:
    """A certificate, key or client CA that cannot be read or used refuses the start, naming its key."""
    from rotary.server.tls.context import server_context

    for path in SERVER_TLS_SECTIONS:
        tls = _section(config, path)
        if not tls.enabled or (path == "http_server.tls" and config.http_server.tls_autocert.enabled):
            continue  # with tls_autocert on, Centrifugo reads no certificate from http_server.tls
        for key in ("cert_pem", "key_pem"):
            if not getattr(tls, key):
                report(f"{path}.{key}: not set")
        readable = _readable(tls, path, ("cert_pem", "key_pem", "client_ca_pem"), report)
        if readable and tls.cert_pem and tls.key_pem:
            _usable(server_context, tls, path, report)


def _section(config: Config, path: str) -> Any:
    section: Any = config
    for step in path.split("."):
        section = getattr(section, step)
    return section


def _readable(tls: Any, path: str, keys: tuple[str, ...], report: Report) -> bool:
    readable = True
    for key in keys:
        value = getattr(tls, key)
        if not value:
            continue
        try:
            read_pem(value)
        except PemError as exc:
            report(f"{path}.{key}: {exc}")
            readable = False
    return readable


def _usable(build: Callable[[Any], object], tls: Any, path: str, report: Report) -> None:
    """Material that reads but that OpenSSL refuses (a key not matching its certificate, not PEM)."""
    import ssl

    try:
        build(tls)
    except (ssl.SSLError, PemError, OSError, ValueError) as exc:
        report(f"{path}: cannot use this certificate material: {exc}")


def check_autocert(config: Config, report: Report) -> None:
    """ACME certificates are obtained over HTTP-01 only (see rotary.server.tls.acme)."""
    from rotary.server.tls.listeners import split_http_addr

    autocert = config.http_server.tls_autocert
    if not autocert.enabled:
        return
    if not autocert.http:
        report(
            "http_server.tls_autocert.http: rotary answers ACME challenges over HTTP-01 only "
            "(TLS-ALPN-01 is not supported); set it to true and make http_addr reachable by the CA"
        )
    try:
        split_http_addr(autocert.http_addr)
    except ValueError as exc:
        report(f"http_server.tls_autocert.http_addr: {exc}")


def check_admin(config: Config, report: Report) -> None:
    """The admin UI's source: a directory that exists, and no development proxy (not built)."""
    admin = config.admin
    if not admin.enabled:
        return
    if admin.web_proxy_address:
        report(
            "admin.web_proxy_address: proxying the admin UI to a development server is not supported "
            'by rotary yet; remove the key or set it to ""'
        )
    if admin.web_path and not os.path.isdir(admin.web_path):
        report(f"admin.web_path: no directory at {admin.web_path!r}")


def check_http3(config: Config, report: Report) -> None:
    """HTTP/3 and WebTransport, with the refusals Centrifugo makes at start (its wording) and the one
    for what rotary does not carry over HTTP/3: client certificates (aioquic verifies none)."""
    http = config.http_server
    if config.webtransport.enabled and not http.http3.enabled:
        report(
            "webtransport.enabled: can not enable webtransport without experimental HTTP/3 "
            "(http_server.http3.enabled)"
        )
    if not http.http3.enabled:
        return
    if not http.tls.enabled:
        report("http_server.http3.enabled: HTTP/3 requires TLS configured (http_server.tls)")
    if http.tls_autocert.enabled:
        report("http_server.http3.enabled: can not use HTTP/3 with autocert")
    if http.tls.enabled and http.tls.client_ca_pem:
        report("http_server.tls.client_ca_pem: client certificates are not verified over HTTP/3 by rotary")
    if http.tls.enabled and installed("aioquic"):  # else: the extra
        from rotary.server.http3 import unusable_certificate
        from rotary.server.tls.context import server_context

        # What OpenSSL refuses is reported once, by check_server_tls; here only what QUIC adds.
        ssl_problems: list[str] = []
        _usable(server_context, http.tls, "http_server.tls", ssl_problems.append)
        problem = "" if ssl_problems else unusable_certificate(http.tls)
        if problem:
            report(f"http_server.tls: {problem}")


def check_opentelemetry(config: Config, report: Report) -> None:
    """Tracing needs the ``otel`` extra, and an exporter protocol Centrifugo knows."""
    if not config.opentelemetry.enabled:
        return
    from rotary.server import tracing

    if tracing.missing_packages():
        report(
            f"opentelemetry.enabled: tracing needs the packages {tracing.PACKAGES} "
            "(pip install 'rotary[otel]')"
        )
    protocol = tracing.exporter_protocol()
    if protocol not in tracing.PROTOCOLS:
        report(
            f"opentelemetry.enabled: {tracing.PROTOCOL_VARIABLE}={protocol} is not supported "
            f"(use {' or '.join(tracing.PROTOCOLS)})"
        )


def check_unbuilt(config: Config, report: Report) -> None:
    """Keys of features rotary does not have yet (the table in rotary.server.config.unbuilt)."""
    for problem in unbuilt_problems(config):
        report(problem)


def check_extras(config: Config, report: Report) -> None:
    """Features whose optional dependencies are not installed (rotary.server.config.extras)."""
    for problem in missing_extras(config):
        report(problem)


RULES: tuple[Callable[[Config, Report], None], ...] = (
    check_extras,
    check_unbuilt,
    check_server,
    check_http3,
    check_client_proxies,
    check_named_proxies,
    check_channels,
    check_personal_channel,
    check_rpc,
    check_consumers,
    check_transforms,
    check_tokens,
    check_redis_addresses,
    check_client_tls,
    check_server_tls,
    check_autocert,
    check_engines,
    check_admin,
    check_opentelemetry,
)
