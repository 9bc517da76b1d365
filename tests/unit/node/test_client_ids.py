"""Connection ids: ``uuid4_string`` spells ``str(uuid.uuid4())`` without building a UUID."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from rotary.node.client import uuid4_string


@given(st.binary(min_size=16, max_size=16))
def test_the_same_bytes_give_the_same_string_as_uuid4(raw: bytes) -> None:
    assert uuid4_string(raw) == str(uuid.UUID(bytes=raw, version=4))


def test_random_ids_are_version_4_and_distinct() -> None:
    ids = {uuid4_string() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
