"""Client RPC of the Centrifugo-compatible server: the built-in ping, then the RPC proxies.

See https://centrifugal.dev/docs/server/proxy#rpc-proxy and https://centrifugal.dev/docs/server/configuration.
"""

from __future__ import annotations

from rotary.node.errors import ClientError
from rotary.node.hooks import ClientView
from rotary.protocol import codes, pb
from rotary.server.config.schema import RpcConfig
from rotary.server.proxy.rpc import RpcProxies


class RpcHooks:
    """``on_rpc`` from the ``rpc`` section."""

    def __init__(self, rpc: RpcConfig, proxies: RpcProxies | None = None) -> None:
        self._rpc = rpc
        self._proxies = proxies

    async def on_rpc(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        """The built-in ping (matched by its whole name) answers an empty result; other methods go
        to the RPC proxies, else 104; with neither ping nor a proxy RPC is 108."""
        ping = self._rpc.ping
        if ping.enabled and request.method == ping.method:
            return b""
        if self._proxies is not None:
            return await self._proxies.call(client, request)
        if not ping.enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        raise ClientError(codes.ERROR_METHOD_NOT_FOUND)
