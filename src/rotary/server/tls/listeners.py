"""Which TLS context each HTTP listener uses, as Centrifugo decides it.

The external port uses ``http_server.tls`` (or ACME certificates with ``tls_autocert``). A separate
internal port uses the same unless ``tls_external`` keeps TLS to the external port, and
``internal_tls`` gives the internal port its own. A listener with a context never answers in
plaintext. See https://centrifugal.dev/docs/server/tls and
https://centrifugal.dev/docs/server/configuration#http_server
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from rotary.server.config.schema_transports import HTTPServerConfig
from rotary.server.pem import PemError
from rotary.server.tls.context import server_context


class TlsSetupError(Exception):
    """TLS material that reads but cannot be used (a key that does not match its certificate...);
    the message starts with the config key."""


@dataclass(frozen=True, slots=True)
class ListenerTls:
    external: ssl.SSLContext | None
    internal: ssl.SSLContext | None


def listener_tls(http: HTTPServerConfig, main: ssl.SSLContext | None = None) -> ListenerTls:
    """Contexts of the external and internal listeners. ``main`` replaces ``http_server.tls``
    (the ACME manager's context); without it an enabled ``http_server.tls`` is loaded."""
    if main is None and http.tls.enabled:
        main = _load("http_server.tls", http)
    internal = None if http.tls_external else main
    if http.internal_tls.enabled:
        internal = _load("http_server.internal_tls", http)
    return ListenerTls(main, internal)


def _load(key: str, http: HTTPServerConfig) -> ssl.SSLContext:
    section = http.internal_tls if key.endswith("internal_tls") else http.tls
    try:
        return server_context(section)
    except (PemError, ssl.SSLError, OSError) as exc:
        raise TlsSetupError(f"{key}: cannot use the certificate and key: {exc}") from None


def split_http_addr(addr: str) -> tuple[str, int]:
    """``host:port`` as Go's net.Listen takes it (``:80`` = every interface). Raises ValueError."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a host:port address: {addr!r}")
    return host.strip("[]"), int(port)
