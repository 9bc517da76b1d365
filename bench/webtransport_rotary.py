"""rotary for the benchmark's WebTransport target: the ``rotary`` server with HTTP/3 and WebTransport
on, TLS from a self-signed ECDSA certificate made at start.

Usage: ``webtransport_rotary.py <config.json>``. The TCP port serves TLS with the same certificate,
so the benchmark publishes over https (without verification).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import signal
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rotary.server.app import build_server, serve
from rotary.server.config.load import parse_config
from rotary.server.config.validate import check_http3


def self_signed() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=10))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


async def main(path: Path) -> None:
    raw = json.loads(path.read_text())
    cert_pem, key_pem = self_signed()
    raw["http_server"]["tls"] = {"enabled": True, "cert_pem": cert_pem, "key_pem": key_pem}
    raw["http_server"]["http3"] = {"enabled": True}
    raw["webtransport"] = {"enabled": True}
    full = path.with_suffix(".webtransport.json")
    full.write_text(json.dumps(raw))
    config = parse_config(str(full), {}, {}).config
    problems: list[str] = []
    check_http3(config, problems.append)
    if problems:
        sys.exit("; ".join(problems))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await serve(build_server(config), stop)


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main(Path(sys.argv[1])))
