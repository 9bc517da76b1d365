"""HTTP/3 and WebTransport settings: Centrifugo's refusals at start (its wording), and rotary's for
what it does not carry over HTTP/3 (https://centrifugal.dev/docs/transports/webtransport)."""

from __future__ import annotations

from helpers.certs import self_signed

from rotary.server.config.schema import Config
from rotary.server.config.schema_transports import (
    HTTP3Config,
    HTTPServerConfig,
    TLSConfig,
    WebTransportConfig,
)
from rotary.server.config.validate import validate

TLS_UNBUILT = "http_server.tls.enabled: "
"""Refused until TLS on the TCP server is built (another branch); the HTTP/3 rules come beside it."""


def _config(*, http3: bool = True, webtransport: bool = True, **tls: str) -> Config:
    certificate = self_signed()
    pem = {"cert_pem": certificate.cert_pem, "key_pem": certificate.key_pem} | tls
    return Config(
        http_server=HTTPServerConfig(tls=TLSConfig(enabled=True, **pem), http3=HTTP3Config(enabled=http3)),
        webtransport=WebTransportConfig(enabled=webtransport),
    )


def _own(problems: list[str]) -> list[str]:
    return [p for p in problems if not p.startswith(TLS_UNBUILT)]


def test_webtransport_over_http3_with_tls_is_accepted() -> None:
    assert _own(validate(_config())) == []


def test_webtransport_needs_http3() -> None:
    assert validate(Config(webtransport=WebTransportConfig(enabled=True))) == [
        "webtransport.enabled: can not enable webtransport without experimental HTTP/3 "
        "(http_server.http3.enabled)"
    ]


def test_http3_needs_tls() -> None:
    config = Config(
        http_server=HTTPServerConfig(http3=HTTP3Config(enabled=True)),
        webtransport=WebTransportConfig(enabled=True),
    )
    assert validate(config) == ["http_server.http3.enabled: HTTP/3 requires TLS configured (http_server.tls)"]


def test_http3_without_webtransport_is_accepted() -> None:
    """Centrifugo serves its other endpoints over HTTP/3 without WebTransport, and so does rotary."""
    assert _own(validate(_config(webtransport=False))) == []


def test_client_certificates_over_http3_are_refused() -> None:
    ca = self_signed().cert_pem
    assert _own(validate(_config(client_ca_pem=ca))) == [
        "http_server.tls.client_ca_pem: client certificates are not verified over HTTP/3 by rotary"
    ]


def test_unreadable_or_unusable_certificates_are_named() -> None:
    assert _own(validate(_config(cert_pem="", key_pem="/nonexistent/key.pem"))) == [
        "http_server.tls.cert_pem: not set",
        "http_server.tls.key_pem: not PEM text, base64-encoded PEM or a path to a PEM file",
    ]
    key_as_cert = self_signed().key_pem
    (problem,) = _own(validate(_config(cert_pem=key_as_cert)))
    assert problem.startswith("http_server.tls: cannot use this certificate material: ")
    other_key = self_signed().key_pem
    (problem,) = _own(validate(_config(key_pem=other_key)))
    assert problem.startswith(
        "http_server.tls: cannot use this certificate material: [X509: KEY_VALUES_MISMATCH]"
    )
