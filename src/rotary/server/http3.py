"""The HTTP/3 listener (``http_server.http3``, experimental): QUIC on the UDP port with the HTTP
server's port number and certificate, serving every route of the HTTP port, as Centrifugo does, and
the WebTransport endpoint when ``webtransport`` is on; ``Alt-Svc`` on the TCP responses is
``server/alt_svc.py``'s (see https://centrifugal.dev/docs/transports/webtransport and
https://centrifugal.dev/docs/server/configuration#http_serverhttp3).
"""

from __future__ import annotations

import asyncio
import errno
import logging

from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import TLSConfig
from rotary.server.pem import PemError, read_pem
from rotary.transports.webtransport import Endpoint

log = logging.getLogger("rotary.server.http3")

IDLE_TIMEOUT = 30.0
"""Seconds of silence after which a QUIC connection is dropped (quic-go's default MaxIdleTimeout)."""
MAX_DATAGRAM_FRAME_SIZE = 65536
"""Datagram support is announced because browsers require it of a WebTransport server."""


def quic_configuration(tls: TLSConfig) -> QuicConfiguration:
    """The server side of QUIC with the certificate chain and key of ``http_server.tls``."""
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=H3_ALPN,
        idle_timeout=IDLE_TIMEOUT,
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
    )
    chain = x509.load_pem_x509_certificates(read_pem(tls.cert_pem))
    configuration.certificate = chain[0]
    configuration.certificate_chain = chain[1:]
    configuration.private_key = load_pem_private_key(read_pem(tls.key_pem), password=None)
    return configuration


def unusable_certificate(tls: TLSConfig) -> str:
    """Why QUIC cannot use the certificate and key of ``tls`` ("" when it can); the PEM settings
    themselves are checked with the other server TLS sections."""
    try:
        configuration = quic_configuration(tls)
    except PemError:
        return ""  # reported with the other PEM settings, naming the key
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"certificate or key not usable for HTTP/3: {exc}"
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = configuration.private_key.public_key().public_bytes(serialization.Encoding.DER, public)
    if configuration.certificate.public_key().public_bytes(serialization.Encoding.DER, public) != ours:
        return "certificate or key not usable for HTTP/3: the key does not match the certificate"
    return ""


async def start_http3(endpoint: Endpoint, config: Config, reuse_port: bool = False) -> QuicServer:
    """Listens on UDP ``http_server.address:port``; OSError when the port cannot be bound."""
    http = config.http_server
    configuration = quic_configuration(http.tls)
    loop = asyncio.get_running_loop()
    hosts = [http.address] if http.address else ["::", "0.0.0.0"]  # dual stack unless IPv6 is off
    for index, host in enumerate(hosts):
        try:
            _, server = await loop.create_datagram_endpoint(
                lambda: QuicServer(configuration=configuration, create_protocol=endpoint.create_protocol),
                local_addr=(host, http.port),
                reuse_port=reuse_port or None,
            )
            break
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE or index == len(hosts) - 1:
                raise
    log.info("serving HTTP/3 (experimental) on udp %s:%d", http.address or "[::]", http.port)
    return server
