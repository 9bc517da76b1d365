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
from rotary.server.proxy.backends import Backend, backend_for

DEFAULT = "default"


class Proxies:
    """Every backend of one config, by kind and name."""

    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        proxies = config.client.proxy
        self.connect = backend_for(proxies.connect) if proxies.connect.enabled else None
        self.refresh = backend_for(proxies.refresh) if proxies.refresh.enabled else None
        named = {p.name: p for p in config.proxies}
        scopes: list[ChannelOptions] = [config.channel.without_namespace, *config.channel.namespaces]
        section = config.channel.proxy

        def build(kind: str, default: ProxyConfig) -> dict[str, Backend]:
            names = {getattr(o, f"{kind}_proxy_name") for o in scopes if getattr(o, f"{kind}_proxy_enabled")}
            return {name: backend_for(default if name == DEFAULT else named[name], name) for name in names}

        self.subscribe = build("subscribe", section.subscribe)
        self.publish = build("publish", section.publish)
        self.sub_refresh = build("sub_refresh", section.sub_refresh)
        self.subscribe_stream = build("subscribe_stream", section.subscribe_stream)
        rpc_scopes = [config.rpc.without_namespace, *config.rpc.namespaces]
        rpc_names = {o.proxy_name for o in rpc_scopes if o.proxy_enabled}
        self.rpc = {
            name: backend_for(config.rpc.proxy if name == DEFAULT else named[name], name)
            for name in rpc_names
        }
        for backend in self._all():
            backend.metrics = metrics

    def _all(self) -> Iterable[Backend]:
        yield from (b for b in (self.connect, self.refresh) if b is not None)
        for kind in (self.subscribe, self.publish, self.sub_refresh, self.subscribe_stream, self.rpc):
            yield from kind.values()

    async def close(self) -> None:
        await asyncio.gather(*(backend.close() for backend in self._all()))
