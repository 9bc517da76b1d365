"""``encode_result`` gives the bytes of ``encode_reply`` without building the Reply."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from rotary.protocol import pb
from rotary.protocol.codec import ProtocolType, codec_for

RESULTS: list[tuple[str, Message]] = [
    ("connect", pb.ConnectResult(client="c1", version="6.9.1", ping=25, pong=True, data=b'{"a":1}')),
    ("connect", pb.ConnectResult()),
    (
        "subscribe",
        pb.SubscribeResult(
            recoverable=True,
            epoch="e",
            offset=3,
            recovered=True,
            publications=[pb.Publication(offset=2, data=b"[1.50]", tags={"b": "2", "a": "1"})],
        ),
    ),
    ("subscribe", pb.SubscribeResult()),
    ("unsubscribe", pb.UnsubscribeResult()),
    ("publish", pb.PublishResult()),
    (
        "presence",
        pb.PresenceResult(presence={"c2": pb.ClientInfo(user="u", client="c2"), "c1": pb.ClientInfo()}),
    ),
    ("presence_stats", pb.PresenceStatsResult()),
    ("history", pb.HistoryResult(epoch="x", offset=0)),
    ("rpc", pb.RPCResult(data=b'"ok"')),
    ("refresh", pb.RefreshResult(client="c", version="v", expires=True, ttl=60)),
    ("sub_refresh", pb.SubRefreshResult(expires=True, ttl=1)),
    ("error", pb.Error(code=109, message="token expired", temporary=True)),
    ("error", pb.Error(code=100, message="internal server error")),
]


@pytest.mark.parametrize("protocol", list(ProtocolType))
@pytest.mark.parametrize(("field", "result"), RESULTS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(RESULTS)])
@given(command_id=st.sampled_from([0, 1, 127, 128, 2**32 - 1]) | st.integers(0, 2**32 - 1))
def test_same_bytes_as_the_reply(
    protocol: ProtocolType, field: str, result: Message, command_id: int
) -> None:
    codec = codec_for(protocol)
    reply = pb.Reply(id=command_id, **{field: result})
    assert codec.encode_result(command_id, field, result) == codec.encode_reply(reply)
