"""Channel name rules under a channel config: namespaces, names, user lists, data formats, tags filters."""

from __future__ import annotations

import pytest

from rotary.engines.base import PublishOptions
from rotary.node.errors import ClientError
from rotary.protocol import pb
from rotary.server.channels import ChannelRules, valid_tags_filter
from rotary.server.config.schema_channels import ChannelConfig, ChannelOptions, NamespaceConfig

SECTION = ChannelConfig(
    without_namespace=ChannelOptions(history_size=10, history_ttl=60.0),
    namespaces=(
        NamespaceConfig(name="chat", allow_user_limited_channels=True, publication_data_format="json"),
        NamespaceConfig(name="digits", channel_regex=r"^\d+$"),
        NamespaceConfig(name="loose", channel_regex="ü"),
        NamespaceConfig(
            name="kept", history_size=5, history_ttl=30.0, history_meta_ttl=90.0, delta_publish=True
        ),
        NamespaceConfig(name="bin", publication_data_format="binary"),
        NamespaceConfig(name="obj", publication_data_format="json_object"),
    ),
)


@pytest.fixture
def rules() -> ChannelRules:
    return ChannelRules(SECTION)


@pytest.mark.parametrize(
    ("channel", "namespace", "rest", "private"),
    [
        ("news", "", "news", False),
        ("chat:room", "chat", "room", False),
        ("chat:room:sub", "chat", "room:sub", False),
        ("$chat:room", "chat", "room", True),
        ("$news", "", "$news", True),
        (":room", "", "room", False),
        ("chat:", "chat", "", False),
    ],
)
def test_resolve_takes_the_name_apart(
    rules: ChannelRules, channel: str, namespace: str, rest: str, private: bool
) -> None:
    resolved = rules.resolve(channel)
    assert (resolved.namespace.name, resolved.rest, resolved.private) == (namespace, rest, private)


@pytest.mark.parametrize("channel", ["nope:room", "$nope:room", "Chat:room"])
def test_unknown_namespace_is_102(rules: ChannelRules, channel: str) -> None:
    with pytest.raises(ClientError) as caught:
        rules.resolve(channel)
    assert caught.value.code == 102


def test_custom_boundaries_and_prefix() -> None:
    section = ChannelConfig(
        namespaces=(NamespaceConfig(name="ns", allow_user_limited_channels=True),),
        private_prefix="!",
        namespace_boundary="/",
        user_boundary="@",
        user_separator=";",
    )
    rules = ChannelRules(section)
    resolved = rules.resolve("!ns/room@1;2")
    assert (resolved.namespace.name, resolved.private, resolved.user_limited) == ("ns", True, True)
    assert rules.user_allowed("!ns/room@1;2", "2")
    assert rules.personal_channel("7", "ns") == "ns/@7"


def test_empty_private_prefix_makes_nothing_private() -> None:
    rules = ChannelRules(ChannelConfig(private_prefix=""))
    assert not rules.resolve("$news").private


@pytest.mark.parametrize(
    ("channel", "valid"),
    [
        ("news", True),
        ("nëws", False),
        ("digits:123", True),
        ("digits:12a", False),
        ("$digits:123", True),
        ("loose:über", True),
        ("loose:uber", False),
    ],
)
def test_name_rules(rules: ChannelRules, channel: str, valid: bool) -> None:
    resolved = rules.resolve(channel)
    assert rules.valid_name(resolved) is valid
    if valid:
        rules.check_name(resolved)
    else:
        with pytest.raises(ClientError) as caught:
            rules.check_name(resolved)
        assert caught.value.code == 107


def test_length_is_counted_in_bytes_up_to_max_length(rules: ChannelRules) -> None:
    rules.check_length("a" * 255)
    for too_long in ("a" * 256, "ü" * 128):
        with pytest.raises(ClientError) as caught:
            rules.check_length(too_long)
        assert caught.value.code == 107
    zero = ChannelRules(ChannelConfig(max_length=0))  # centrifuge's default, as in Centrifugo
    zero.check_length("a" * 255)
    with pytest.raises(ClientError):
        zero.check_length("a" * 256)


@pytest.mark.parametrize(
    ("channel", "user", "allowed"),
    [
        ("chat:room", "42", True),
        ("chat:room#42", "42", True),
        ("chat:room#42,43", "43", True),
        ("chat:room#42,43", "44", False),
        ("chat:room#42,43", "", False),
        ("chat:a#1#42", "42", True),
        ("chat:a#1#42", "1", False),
    ],
)
def test_user_lists(rules: ChannelRules, channel: str, user: str, allowed: bool) -> None:
    assert rules.user_allowed(channel, user) is allowed


def test_user_limited_needs_the_namespace_option(rules: ChannelRules) -> None:
    assert rules.resolve("chat:room#1").user_limited
    assert not rules.resolve("chat:room").user_limited
    assert not rules.resolve("room#1").user_limited


def test_personal_channel(rules: ChannelRules) -> None:
    assert rules.personal_channel("42", "") == "#42"
    assert rules.personal_channel("42", "personal") == "personal:#42"


@pytest.mark.parametrize(
    ("channel", "data", "ok"),
    [
        ("news", b"", False),
        ("news", b"x", True),
        ("chat:room", b'{"a": 1}', True),
        ("chat:room", b"[1, 2]", True),
        ("chat:room", b"123456789012345678901234567890", True),
        ("chat:room", b"NaN", False),
        ("chat:room", b"{", False),
        ("chat:room", b"", False),
        ("bin:x", b"", True),
        ("bin:x", b"\xff\x00", True),
        ("obj:x", b' {"a": [1]} \n', True),
        ("obj:x", b"[1]", False),
        ("obj:x", b'"{}"', False),
        ("obj:x", b"{} {}", False),
        ("chat:room", b"[" * 5000 + b"]" * 5000, True),  # deeper than any recursive parser goes
        ("chat:room", b"[" * 5000 + b"]" * 4999, False),
        ("obj:x", b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}", True),
    ],
    ids=lambda value: value[:24] if isinstance(value, bytes) else None,
)
def test_publication_data_formats(rules: ChannelRules, channel: str, data: bytes, ok: bool) -> None:
    resolved = rules.resolve(channel)
    if ok:
        rules.check_data(resolved, data)
    else:
        with pytest.raises(ClientError) as caught:
            rules.check_data(resolved, data)
        assert caught.value.code == 107


def test_section_data_format_is_the_default() -> None:
    section = ChannelConfig(
        publication_data_format="json_object",
        namespaces=(NamespaceConfig(name="raw", publication_data_format="binary"),),
    )
    rules = ChannelRules(section)
    assert rules.resolve("news").namespace.data_format == "json_object"
    assert rules.resolve("raw:x").namespace.data_format == "binary"


def test_publish_options_follow_the_namespace(rules: ChannelRules) -> None:
    assert rules.publish_options("kept:x") == PublishOptions(
        history_size=5, history_ttl=30.0, history_meta_ttl=90.0, use_delta=True
    )
    assert rules.publish_options("news") == PublishOptions(
        history_size=10, history_ttl=60.0, history_meta_ttl=SECTION.history_meta_ttl
    )
    with pytest.raises(ClientError):
        rules.publish_options("nope:x")


def test_history_needs_size_and_ttl(rules: ChannelRules) -> None:
    assert rules.resolve("news").namespace.history_enabled
    assert not rules.resolve("chat:x").namespace.history_enabled
    assert (
        not ChannelRules(ChannelConfig(without_namespace=ChannelOptions(history_size=3)))
        .resolve("x")
        .namespace.history_enabled
    )


def leaf(key: str = "k", cmp: str = "eq", val: str = "", vals: tuple[str, ...] = ()) -> pb.FilterNode:
    return pb.FilterNode(key=key, cmp=cmp, val=val, vals=list(vals))


def tree(op: str, *nodes: pb.FilterNode) -> pb.FilterNode:
    return pb.FilterNode(op=op, nodes=list(nodes))


@pytest.mark.parametrize(
    ("node", "valid"),
    [
        (leaf(val="1"), True),
        (leaf(cmp="gte", val="1"), True),
        (leaf(val=""), False),
        (leaf(key="", val="1"), False),
        (leaf(val="1", vals=("2",)), False),
        (leaf(cmp="in", vals=("1", "2")), True),
        (leaf(cmp="nin", vals=()), False),
        (leaf(cmp="in", val="1", vals=("1",)), False),
        (leaf(key="", cmp="in", vals=("1",)), False),
        (leaf(cmp="ex"), True),
        (leaf(key="", cmp="nex"), True),
        (leaf(cmp="ex", val="1"), False),
        (leaf(cmp=""), False),
        (leaf(cmp="like", val="1"), False),
        (tree("and", leaf(val="1"), leaf(cmp="ex")), True),
        (tree("or"), False),
        (tree("or", leaf(val="1"), leaf(val="")), False),
        (tree("not", leaf(val="1")), True),
        (tree("not", leaf(val="1"), leaf(val="2")), False),
        (tree("not", tree("and")), False),
        (tree("xor", leaf(val="1")), False),
    ],
)
def test_tags_filter_validation(node: pb.FilterNode, valid: bool) -> None:
    assert valid_tags_filter(node) is valid
