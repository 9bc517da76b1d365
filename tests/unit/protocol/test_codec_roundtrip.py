"""Every Command, Reply and Push survives encode -> decode unchanged, in both encodings."""

from __future__ import annotations

from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import commands, pushes, replies

from rotary.protocol import pb
from rotary.protocol.codec import Codec, ProtocolType, codec_for

both_codecs = st.sampled_from([codec_for(ProtocolType.JSON), codec_for(ProtocolType.PROTOBUF)])


def _roundtrip(codec: Codec, message: Message) -> None:
    decoded = codec.decode(codec.encode(message), type(message))
    assert decoded == [message]


@given(both_codecs, commands)
def test_commands_roundtrip(codec: Codec, command: pb.Command) -> None:
    _roundtrip(codec, command)


@given(both_codecs, replies)
def test_replies_roundtrip(codec: Codec, reply: pb.Reply) -> None:
    _roundtrip(codec, reply)


@given(both_codecs, pushes)
def test_pushes_roundtrip(codec: Codec, push: pb.Push) -> None:
    _roundtrip(codec, push)


@given(both_codecs, st.lists(commands, min_size=1, max_size=4))
def test_batched_commands_roundtrip(codec: Codec, batch: list[pb.Command]) -> None:
    frame = codec.join([codec.encode(command) for command in batch])
    assert codec.decode_commands(frame) == batch


@given(both_codecs, replies)
def test_encoding_is_deterministic(codec: Codec, reply: pb.Reply) -> None:
    copy = pb.Reply()
    copy.CopyFrom(reply)
    assert codec.encode_reply(copy) == codec.encode_reply(reply)


def test_codec_for_returns_shared_instances() -> None:
    for protocol_type in ProtocolType:
        codec = codec_for(protocol_type)
        assert codec.protocol_type is protocol_type
        assert codec_for(protocol_type) is codec


def test_encode_push_and_reply_match_encode() -> None:
    push = pb.Push(channel="c")
    for protocol_type in ProtocolType:
        codec = codec_for(protocol_type)
        assert codec.encode_push(push) == codec.encode(push)
        assert codec.encode_reply(pb.Reply(push=push)) == codec.encode(pb.Reply(push=push))
