"""Where the TLS relay of ``grpc.tls.insecure_skip_verify`` connects: GRPC targets as Centrifugo's
proxies spell them. See https://centrifugal.dev/docs/server/proxy#grpc-proxy
"""

from __future__ import annotations

import pytest

from rotary.server.proxy.tls_relay import split_target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("backend.internal:50051", ("backend.internal", 50051)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("backend.internal", ("backend.internal", 443)),
        ("[::1]", ("::1", 443)),
    ],
)
def test_targets(target: str, expected: tuple[str, int]) -> None:
    assert split_target(target) == expected
