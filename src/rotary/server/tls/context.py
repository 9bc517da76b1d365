"""``ssl.SSLContext`` objects built from a Centrifugo TLS section, on either side of a connection.

Centrifugo turns every TLS section into one Go ``tls.Config`` (see TLSConfig in its configtypes):
TLS 1.2 at least; ``cert_pem`` and ``key_pem`` are this side's certificate; ``server_ca_pem`` is
what a client trusts instead of the system roots; ``client_ca_pem`` makes a server require and
verify client certificates (mutual TLS); ``server_name`` is the name a client verifies (and sends
as SNI); ``insecure_skip_verify`` turns a client's verification off. Every PEM value is PEM text,
its base64 or a file path (``rotary.server.pem``).
See https://centrifugal.dev/docs/server/tls
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Protocol

from rotary.server.pem import read_pem

HTTP_ALPN = ("http/1.1",)
"""What the HTTP server speaks over TLS (Centrifugo's Go server also offers h2)."""


class TlsSection(Protocol):
    """The fields of a config TLS section (``TLSConfig``) that a context needs."""

    @property
    def cert_pem(self) -> str: ...

    @property
    def key_pem(self) -> str: ...

    @property
    def server_ca_pem(self) -> str: ...

    @property
    def client_ca_pem(self) -> str: ...

    @property
    def insecure_skip_verify(self) -> bool: ...

    @property
    def server_name(self) -> str: ...


def load_key_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Loads a certificate chain and its key given as PEM bytes.

    ``SSLContext.load_cert_chain`` reads files only, so the PEM goes through an anonymous
    in-memory file (Linux memfd) where there is one, else a private temporary file removed at once.
    """
    pem = key.rstrip(b"\n") + b"\n" + cert
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("rotary-tls")
        try:
            os.write(fd, pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


def server_context(section: TlsSection, alpn: tuple[str, ...] = HTTP_ALPN) -> ssl.SSLContext:
    """The context of a listener: its certificate, and client verification when ``client_ca_pem``
    is set. Raises ``PemError`` or ``ssl.SSLError`` for material that cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_key_pair(context, read_pem(section.cert_pem), read_pem(section.key_pem))
    if section.client_ca_pem:
        context.load_verify_locations(cadata=read_pem(section.client_ca_pem).decode())
        context.verify_mode = ssl.CERT_REQUIRED
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


@dataclass(frozen=True, slots=True)
class ClientTls:
    """A client's TLS: the context and the name to verify the server against ("" for the host dialled)."""

    context: ssl.SSLContext
    server_name: str = ""


def client_tls(section: TlsSection) -> ClientTls:
    """What a client of Redis, Sentinel or NATS dials with. Raises ``PemError`` or ``ssl.SSLError``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if section.server_ca_pem:
        context.load_verify_locations(cadata=read_pem(section.server_ca_pem).decode())
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if section.cert_pem and section.key_pem:
        load_key_pair(context, read_pem(section.cert_pem), read_pem(section.key_pem))
    if section.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return ClientTls(context, section.server_name)
