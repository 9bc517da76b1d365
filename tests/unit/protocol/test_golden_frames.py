"""Golden frames: hand-written bytes of representative messages in both encodings.

The files under tests/data/frames were written from the protocol spec, not dumped from rotary: each
must decode and re-encode to exactly the same bytes. The name's prefix says which message type the
frame holds (command_, reply_, push_ for a bare unidirectional Push).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from centrifuge.protocol import client_pb2 as sdk_pb
from google.protobuf import json_format
from google.protobuf.message import Message

from rotary.protocol import pb
from rotary.protocol.codec import ProtocolType, codec_for

FRAMES = Path(__file__).parents[2] / "data" / "frames"
MESSAGE_TYPES: dict[str, type[Message]] = {"command": pb.Command, "reply": pb.Reply, "push": pb.Push}
SDK_TYPES: dict[str, type[Message]] = {"command": sdk_pb.Command, "reply": sdk_pb.Reply, "push": sdk_pb.Push}
PROTOCOLS = {".json": ProtocolType.JSON, ".bin": ProtocolType.PROTOBUF}
NAMES = sorted({path.stem for path in FRAMES.iterdir()})


def _kind(name: str) -> str:
    return name.split("_", 1)[0]


def _decode(path: Path) -> list[Message]:
    codec = codec_for(PROTOCOLS[path.suffix])
    return codec.decode(path.read_bytes(), MESSAGE_TYPES[_kind(path.stem)])


def test_every_frame_exists_in_both_encodings() -> None:
    assert len(NAMES) >= 12
    for name in NAMES:
        assert (FRAMES / f"{name}.json").is_file() and (FRAMES / f"{name}.bin").is_file()


@pytest.mark.parametrize("suffix", PROTOCOLS)
@pytest.mark.parametrize("name", NAMES)
def test_decode_then_encode_gives_the_same_bytes(name: str, suffix: str) -> None:
    path = FRAMES / f"{name}{suffix}"
    codec = codec_for(PROTOCOLS[suffix])
    assert codec.join([codec.encode(message) for message in _decode(path)]) == path.read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_both_encodings_carry_the_same_messages(name: str) -> None:
    assert _decode(FRAMES / f"{name}.json") == _decode(FRAMES / f"{name}.bin")


@pytest.mark.parametrize("name", NAMES)
def test_sdk_schema_reads_the_same_fields(name: str) -> None:
    """centrifuge-python's own generated classes agree with rotary's field numbers and types.

    A field the SDK did not recognise would be missing from its dict, so equal dicts mean every byte
    of the frame was understood the same way.
    """
    ours = _decode(FRAMES / f"{name}.bin")
    sdk_type = SDK_TYPES[_kind(name)]
    theirs = [sdk_type.FromString(message.SerializeToString()) for message in ours]
    assert [json_format.MessageToDict(m) for m in theirs] == [json_format.MessageToDict(m) for m in ours]
