"""Client RPC of the Centrifugo-compatible server: the built-in ping.

See https://centrifugal.dev/docs/server/proxy#rpc-proxy and https://centrifugal.dev/docs/server/configuration.
"""

from __future__ import annotations

from rotary.node.errors import ClientError
from rotary.node.hooks import ClientView
from rotary.protocol import codes, pb
from rotary.server.config.schema import RpcConfig


class RpcHooks:
    """``on_rpc`` from the ``rpc`` section."""

    def __init__(self, rpc: RpcConfig) -> None:
        self._rpc = rpc

    async def on_rpc(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        """The built-in ping answers an empty result; with no RPC handler at all RPC is 108."""
        ping = self._rpc.ping
        if not ping.enabled:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        if request.method != ping.method:
            raise ClientError(codes.ERROR_METHOD_NOT_FOUND)
        return b""
