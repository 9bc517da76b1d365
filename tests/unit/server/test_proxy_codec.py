"""The JSON body of a proxy request: raw payload fields are written as the JSON they hold, and a
payload that is not JSON (a Protobuf client's binary data without ``binary_encoding``) is refused
as Go's encoding/json refuses it. See https://centrifugal.dev/docs/server/proxy#binary-encoding-mode
"""

from __future__ import annotations

import pytest

from rotary.server.proxy import codec, messages


@pytest.mark.parametrize(
    "data",
    [b'{"a": 1}', b"123456789012345678901234567890", b'"text"', b"[" * 2000 + b"]" * 2000, b" null "],
)
def test_json_payloads_are_written_as_they_are(data: bytes) -> None:
    body = codec.encode_request(messages.RPCRequest(client="c", method="m", data=data))
    assert data.strip() in body


@pytest.mark.parametrize("data", [b"\x00\xff", b"not json", b"NaN", b'{"a": 1', b"[" * 10001 + b"]" * 10001])
def test_payloads_that_are_not_json_are_refused(data: bytes) -> None:
    with pytest.raises(codec.UnencodableRequest):
        codec.encode_request(messages.PublishRequest(client="c", channel="x", data=data))


def test_meta_is_checked_like_data() -> None:
    with pytest.raises(codec.UnencodableRequest):
        codec.encode_request(messages.RefreshRequest(client="c", meta=b"\x01"))
