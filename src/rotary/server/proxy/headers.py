"""Which headers of a client travel to the backend, as Centrifugo picks them.

Static headers (or GRPC metadata) first, then the client's emulated headers listed in
``emulated_headers`` (they come from the connect frame, so they are client-controlled), then the
request headers listed in ``http_headers``, which override both; a connection without HTTP
headers (uni_grpc) forwards its call metadata listed in ``grpc_metadata`` instead. See
https://centrifugal.dev/docs/server/proxy#proxy-http-headers and
https://centrifugal.dev/docs/transports/headers_emulation
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rotary.server.config.schema import ProxyConfig


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a proxy call may forward of the client it is made for."""

    headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers of the connection, keys lower-cased."""
    emulated: Mapping[str, str] = field(default_factory=dict)
    """Headers the client sent in its connect command (headers emulation)."""
    grpc_metadata: Mapping[str, str] = field(default_factory=dict)
    """Metadata of the GRPC call that opened the connection (uni_grpc)."""


def forwarded(config: ProxyConfig, context: CallContext, static: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased header name -> value for one call."""
    allowed = {name.lower() for name in config.http_headers}
    allowed_emulated = {name.lower() for name in config.emulated_headers}
    out = {name.lower(): value for name, value in static.items()}
    for name, value in context.emulated.items():
        if name.lower() in allowed_emulated:
            out[name.lower()] = value
    for name, value in context.headers.items():
        if name in allowed:
            out[name] = value
    if not context.headers:  # a GRPC connection: its call metadata stands in for headers
        allowed_metadata = set(config.grpc_metadata)
        for name, value in context.grpc_metadata.items():
            if name in allowed_metadata:
                out[name] = value
    return out
