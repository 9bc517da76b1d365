"""Prepared pushes are byte for byte what the generic codecs produce."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import channels, client_infos, publications

from rotary.protocol import pb, prepared
from rotary.protocol.codec import ProtocolType, codec_for

protocol_types = st.sampled_from(list(ProtocolType))


def _generic(protocol_type: ProtocolType, push: pb.Push, unidirectional: bool) -> bytes:
    codec = codec_for(protocol_type)
    return codec.encode_push(push) if unidirectional else codec.encode_reply(pb.Reply(push=push))


@given(channels, publications(), protocol_types, st.booleans())
def test_publication_push_matches_codec(
    channel: str, pub: pb.Publication, protocol_type: ProtocolType, unidirectional: bool
) -> None:
    expected = _generic(protocol_type, pb.Push(channel=channel, pub=pub), unidirectional)
    assert prepared.publication_push(channel, pub, protocol_type, unidirectional) == expected


@given(channels, client_infos, protocol_types, st.booleans())
def test_join_and_leave_pushes_match_codec(
    channel: str, info: pb.ClientInfo, protocol_type: ProtocolType, unidirectional: bool
) -> None:
    join = _generic(protocol_type, pb.Push(channel=channel, join=pb.Join(info=info)), unidirectional)
    assert prepared.join_push(channel, info, protocol_type, unidirectional) == join
    leave = _generic(protocol_type, pb.Push(channel=channel, leave=pb.Leave(info=info)), unidirectional)
    assert prepared.leave_push(channel, info, protocol_type, unidirectional) == leave


def test_default_is_bidirectional() -> None:
    pub = pb.Publication(data=b'{"x":3}', offset=7)
    assert prepared.publication_push("chat:1", pub, ProtocolType.JSON) == (
        b'{"push":{"channel":"chat:1","pub":{"data":{"x":3},"offset":7}}}'
    )


def test_json_field_tables_follow_the_schema() -> None:
    """The flat JSON tables must list every field, in field-number order, or pushes lose data."""
    info_names = [field.name for field in pb.ClientInfo.DESCRIPTOR.fields]
    assert ["user", "client"] + [name for name, _ in prepared._CLIENT_INFO_TAIL] == info_names
    pub_names = [field.name for field in sorted(pb.Publication.DESCRIPTOR.fields, key=lambda f: f.number)]
    assert ["data", "info"] + [name for name, _ in prepared._PUBLICATION_TAIL] == pub_names


def test_an_anonymous_joiner_has_an_empty_user_on_json() -> None:
    """Centrifugo's JSON writes ClientInfo's user and client even empty (user "" is anonymous)."""
    info = pb.ClientInfo(client="c1")
    assert prepared.join_push("chat:1", info, ProtocolType.JSON) == (
        b'{"push":{"channel":"chat:1","join":{"info":{"user":"","client":"c1"}}}}'
    )
