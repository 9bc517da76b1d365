"""The RPC proxy, chosen per RPC namespace: the part of the method before ``rpc.namespace_boundary``.

See https://centrifugal.dev/docs/server/proxy#rpc-proxy
"""

from __future__ import annotations

from collections.abc import Mapping

from rotary.node.errors import ClientError
from rotary.node.hooks import ClientView
from rotary.protocol import codes, pb
from rotary.server.config.schema import RpcConfig, RpcOptions
from rotary.server.proxy import messages
from rotary.server.proxy.backends import Backend
from rotary.server.proxy.outcome import ask, payload, raise_refusal
from rotary.server.proxy.requests import client_request, context_of


class RpcProxies:
    def __init__(self, rpc: RpcConfig, backends: Mapping[str, Backend]) -> None:
        self._rpc = rpc
        self._namespaces = {ns.name: ns for ns in rpc.namespaces}
        self._backends = backends

    def options(self, method: str) -> RpcOptions | None:
        """The options of the method's RPC namespace; None when that namespace is not configured."""
        boundary = self._rpc.namespace_boundary
        if not boundary or boundary not in method:
            return self._rpc.without_namespace
        return self._namespaces.get(method.split(boundary, 1)[0])

    async def call(self, client: ClientView, request: pb.RPCRequest) -> bytes:
        """104 for a method of an unknown namespace, 108 where no proxy is enabled."""
        options = self.options(request.method)
        if options is None:
            raise ClientError(codes.ERROR_METHOD_NOT_FOUND)
        backend = self._backends.get(options.proxy_name) if options.proxy_enabled else None
        if backend is None:
            raise ClientError(codes.ERROR_NOT_AVAILABLE)
        proxied = client_request(messages.RPCRequest, backend, client, request.data, method=request.method)
        response = await ask(backend, "RPC", proxied, messages.RPCResponse, context_of(client))
        raise_refusal(response)
        return payload(response.result.data, response.result.b64data)
