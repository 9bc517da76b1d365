"""Optional dependencies a config needs: a config that uses one not installed is refused by key.

``pip install rotary`` serves Centrifugo's default setup (memory engine, WebSocket, SSE, HTTP
streaming, the HTTP API) and keeps a host application's environment small when rotary is embedded;
the Redis and NATS engines, ACME certificates, the GRPC parts (server API, uni_grpc, GRPC proxies)
and HTTP/3 (WebTransport) come with the extras ``rotary[redis]``, ``rotary[nats]``,
``rotary[acme]``, ``rotary[grpc]`` and ``rotary[http3]`` (``rotary[all]`` for every one). Their
modules are imported only where the feature is built
(rotary.server.engines, rotary.server.app), so a missing one is found here, at validation, and
``checkconfig`` and start name the key and the extra instead of a traceback.
See https://centrifugal.dev/docs/server/engines and https://centrifugal.dev/docs/server/tls
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from rotary.server.config.schema import Config


@dataclass(frozen=True)
class Extra:
    """One optional feature: the key that turns it on in ``config`` (empty when off), its extra and
    the top-level modules that extra installs."""

    extra: str
    modules: tuple[str, ...]
    key_in_use: Callable[[Config], str]


def _redis_key(config: Config) -> str:
    from rotary.server.engines import broker_type, presence_type

    if broker_type(config) == "redis":
        return "broker.type" if config.broker.enabled else "engine.type"
    if presence_type(config) == "redis":
        return "presence_manager.type" if config.presence_manager.enabled else "engine.type"
    return ""


def _nats_key(config: Config) -> str:
    from rotary.server.engines import broker_type

    return "broker.type" if broker_type(config) == "nats" else ""


def _acme_key(config: Config) -> str:
    return "http_server.tls_autocert.enabled" if config.http_server.tls_autocert.enabled else ""


def _grpc_key(config: Config) -> str:
    """The first key that needs grpcio: the GRPC server API, uni_grpc, or a proxy in use whose
    endpoint is not HTTP (Centrifugo calls those over GRPC)."""
    from rotary.server.proxy.registry import DEFAULT, used_proxies

    if config.grpc_api.enabled:
        return "grpc_api.enabled"
    if config.uni_grpc.enabled:
        return "uni_grpc.enabled"
    sections = {"connect": "client.proxy.connect", "refresh": "client.proxy.refresh", "rpc": "rpc.proxy"}
    for kind, proxies in used_proxies(config).items():
        for name, proxy in sorted(proxies.items()):
            if proxy.endpoint and not proxy.endpoint.startswith(("http://", "https://")):
                default = sections.get(kind, f"channel.proxy.{kind}")
                return f"{default if name == DEFAULT else f'proxies ({name})'}.endpoint"
    return ""


def _http3_key(config: Config) -> str:
    if config.http_server.http3.enabled:
        return "http_server.http3.enabled"
    return "webtransport.enabled" if config.webtransport.enabled else ""


EXTRAS = (
    Extra("redis", ("redis", "hiredis"), _redis_key),
    Extra("nats", ("nats",), _nats_key),
    Extra("acme", ("acme", "josepy", "requests"), _acme_key),
    Extra("grpc", ("grpc", "grpc_reflection", "grpc_status"), _grpc_key),
    Extra("http3", ("aioquic",), _http3_key),
)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_extras(config: Config, available: Callable[[str], bool] = installed) -> list[str]:
    """One problem per feature ``config`` turns on whose extra is not installed."""
    problems = []
    for extra in EXTRAS:
        key = extra.key_in_use(config)
        if not key:
            continue  # a module lookup reads the disk: only for the features in use
        absent = [module for module in extra.modules if not available(module)]
        if absent:
            problems.append(
                f"{key}: needs the optional dependencies of rotary[{extra.extra}] "
                f"(missing module {', '.join(absent)}); install them with pip install 'rotary[{extra.extra}]'"
            )
    return problems
