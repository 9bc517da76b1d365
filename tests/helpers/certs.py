"""Certificates a test makes for itself: a CA, server certificates it signs, client certificates,
and self-signed ones (WebTransport's hash-pinned certificates, a JWT key inside a certificate).

Real TLS in tests (rotary's listeners, proxy backends, Redis and NATS servers) needs real
certificates; these are short-lived ECDSA ones made with ``cryptography``, written as PEM files when a
server needs paths. Every test makes its certificates here.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Writes ``<name>.crt`` and ``<name>.key`` into ``directory``; their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class TestCA:
    """A CA made for one test, issuing server and client certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "rotary test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path, name: str = "ca") -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.crt"
        path.write_bytes(self.cert_pem)
        return path

    def issue(
        self,
        common_name: str,
        names: tuple[str, ...] = LOOPBACK_NAMES,
        *,
        client: bool = False,
        server: bool | None = None,
    ) -> Issued:
        """A certificate for ``names`` (DNS names or IPs), for a server or, with ``client``, a client
        (``server=True`` too for a peer that is both, like a Redis Cluster node on its bus)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        as_server = not client if server is None else server
        usage = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        usage += [ExtendedKeyUsageOID.SERVER_AUTH] if as_server else []
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def client_context(
        self, client_cert: Issued | None = None, directory: Path | None = None
    ) -> ssl.SSLContext:
        """A client context trusting this CA, presenting ``client_cert`` (written to ``directory``)."""
        context = ssl.create_default_context(cadata=self.cert_pem.decode())
        if client_cert is not None:
            assert directory is not None, "a client certificate is loaded from files"
            cert, key = client_cert.write(directory, "client")
            context.load_cert_chain(cert, key)
        return context


@dataclass(frozen=True)
class SelfSigned:
    cert_pem: str
    key_pem: str
    sha256: bytes
    """The SHA-256 of the DER certificate, what a browser's ``serverCertificateHashes`` pins."""


def self_signed(
    days: float = 10,
    host: str = "127.0.0.1",
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
) -> SelfSigned:
    """A certificate for IP ``host`` signed by its own key (a fresh ECDSA P-256 one unless ``key``),
    valid ``days`` from five minutes ago: under 14 days, the kind browsers accept by hash."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SelfSigned(
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        _key_pem(key).decode(),
        hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest(),
    )
