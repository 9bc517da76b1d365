"""The proxies one config names, built once and closed with the server.

Each event kind has its own backends by proxy name: ``default`` is the kind's own section
(``client.proxy.connect``, ``channel.proxy.subscribe``, ``rpc.proxy``...), any other name an entry
of ``proxies``. Only the proxies some option enables are built, as Centrifugo does.
See https://centrifugal.dev/docs/server/proxy
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from rotary.node.metrics import Metrics
from rotary.server.config.schema import ChannelOptions, Config, ProxyConfig
from rotary.server.config.schema_channels import NamedProxyConfig
from rotary.server.proxy.backends import Backend, backend_for

DEFAULT = "default"


CHANNEL_KINDS = ("subscribe", "publish", "sub_refresh", "subscribe_stream")


def used_proxies(config: Config) -> dict[str, dict[str, ProxyConfig]]:
    """The proxy configs some option enables, by event kind ("connect", "refresh", the channel
    kinds, "rpc") and proxy name; those are the ones built."""
    named = {p.name: p for p in config.proxies}
    client = config.client.proxy
    used: dict[str, dict[str, ProxyConfig]] = {
        "connect": {DEFAULT: client.connect} if client.connect.enabled else {},
        "refresh": {DEFAULT: client.refresh} if client.refresh.enabled else {},
    }
    scopes: list[ChannelOptions] = [config.channel.without_namespace, *config.channel.namespaces]
    for kind in CHANNEL_KINDS:
        default = getattr(config.channel.proxy, kind)
        names = {getattr(o, f"{kind}_proxy_name") for o in scopes if getattr(o, f"{kind}_proxy_enabled")}
        used[kind] = _by_name(default, named, names)
    rpc_scopes = [config.rpc.without_namespace, *config.rpc.namespaces]
    rpc_names = {o.proxy_name for o in rpc_scopes if o.proxy_enabled}
    used["rpc"] = _by_name(config.rpc.proxy, named, rpc_names)
    return used


def _by_name(
    default: ProxyConfig, named: dict[str, NamedProxyConfig], names: Iterable[str]
) -> dict[str, ProxyConfig]:
    """The kind's own section for ``default``, else the entry of ``proxies``; a name no proxy has
    is skipped (validation refuses it)."""
    found: dict[str, ProxyConfig] = {}
    for name in names:
        if name == DEFAULT:
            found[name] = default
        elif name in named:
            found[name] = named[name]
    return found


class Proxies:
    """Every backend of one config, by kind and name."""

    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        used = used_proxies(config)

        def build(kind: str) -> dict[str, Backend]:
            return {name: backend_for(proxy, name) for name, proxy in used[kind].items()}

        connect, refresh = build("connect"), build("refresh")
        self.connect = connect.get(DEFAULT)
        self.refresh = refresh.get(DEFAULT)
        self.subscribe = build("subscribe")
        self.publish = build("publish")
        self.sub_refresh = build("sub_refresh")
        self.subscribe_stream = build("subscribe_stream")
        self.rpc = build("rpc")
        for backend in self._all():
            backend.metrics = metrics

    def _all(self) -> Iterable[Backend]:
        yield from (b for b in (self.connect, self.refresh) if b is not None)
        for kind in (self.subscribe, self.publish, self.sub_refresh, self.subscribe_stream, self.rpc):
            yield from kind.values()

    async def close(self) -> None:
        await asyncio.gather(*(backend.close() for backend in self._all()))
