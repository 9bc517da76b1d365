"""Pushes for delta subscribers: whole data or a fossil patch, and on JSON connections either one as a
JSON string (https://centrifugal.dev/docs/server/delta_compression)."""

from __future__ import annotations

import orjson
import pytest

from rotary.protocol import fossil, pb, prepared
from rotary.protocol.codec import ProtocolType

OLD = orjson.dumps({"rows": list(range(50)), "name": "old"})
NEW = orjson.dumps({"rows": list(range(50)), "name": "new"})


def test_protobuf_delta_push_carries_the_raw_patch() -> None:
    pub = pb.Publication(data=NEW, offset=2, tags={"k": "v"})
    patch = fossil.create(OLD, NEW)
    push = prepared.delta_publication_push("ch", pub, patch, ProtocolType.PROTOBUF)
    expected = pb.Publication(data=patch, offset=2, tags={"k": "v"}, delta=True)
    assert push == prepared.publication_push("ch", expected, ProtocolType.PROTOBUF)


def test_protobuf_push_without_patch_is_the_plain_one() -> None:
    pub = pb.Publication(data=NEW, offset=2)
    assert prepared.delta_publication_push(
        "ch", pub, None, ProtocolType.PROTOBUF
    ) == prepared.publication_push("ch", pub, ProtocolType.PROTOBUF)


def test_json_push_puts_data_and_patch_in_json_strings() -> None:
    pub = pb.Publication(data=NEW, offset=2)
    whole = orjson.loads(prepared.delta_publication_push("ch", pub, None, ProtocolType.JSON))
    assert whole["push"]["pub"] == {"data": NEW.decode(), "offset": 2}
    patch = fossil.create(OLD, NEW)
    delta = orjson.loads(prepared.delta_publication_push("ch", pub, patch, ProtocolType.JSON))
    assert delta["push"]["pub"] == {"data": patch.decode(), "offset": 2, "delta": True}


@pytest.mark.parametrize("protocol", list(ProtocolType))
def test_patch_not_smaller_than_the_data_is_not_used(protocol: ProtocolType) -> None:
    data, is_delta = prepared.delta_data(b'"x"', fossil.create(b'"y"', b'"x"'), protocol)
    assert not is_delta
    assert data == (b'"\\"x\\""' if protocol is ProtocolType.JSON else b'"x"')


@pytest.mark.parametrize("protocol", list(ProtocolType))
def test_delta_chain_applies_in_order(protocol: ProtocolType) -> None:
    versions = [orjson.dumps({"rows": list(range(50)), "v": v}) for v in range(4)]
    pubs = [pb.Publication(data=data, offset=i + 1) for i, data in enumerate(versions)]
    chain = prepared.delta_chain(pubs, protocol)
    assert [p.delta for p in chain] == [False, True, True, True]
    assert [p.offset for p in chain] == [1, 2, 3, 4]
    base = b""
    for pub, expected in zip(chain, versions, strict=True):
        wire = orjson.loads(pub.data).encode() if protocol is ProtocolType.JSON else pub.data
        base = fossil.apply(base, wire) if pub.delta else wire
        assert base == expected
    assert pubs[1].data == versions[1] and not pubs[1].delta  # the originals are untouched
