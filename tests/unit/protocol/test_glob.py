"""Channel patterns of the `channels` API method compile and match as Centrifugo's glob does."""

from __future__ import annotations

import pytest

from rotary.protocol.glob import InvalidPattern, compile_pattern


@pytest.mark.parametrize(
    ("pattern", "channel", "matches"),
    [
        ("chat:*", "chat:1", True),
        ("chat:*", "news:1", False),
        ("*", "a:b/c.d", True),
        ("chat:?", "chat:1", True),
        ("chat:?", "chat:12", False),
        ("chat:{cb1,zz}", "chat:cb1", True),
        ("chat:{cb1,zz}", "chat:zz", True),
        ("chat:{cb1,zz}", "chat:cb", False),
        ("{a,b{c,d}}", "bd", True),
        ("[a-c]x", "bx", True),
        ("[!a-c]x", "bx", False),
        ("[^a-c]x", "dx", True),
        ("[xyz]", "y", True),
        (r"a\*", "a*", True),
        (r"a\*", "ab", False),
        ("a.b", "axb", False),
        ("plain", "plain", True),
        ("plain", "plainer", False),
    ],
)
def test_matches_whole_channel_names(pattern: str, channel: str, matches: bool) -> None:
    assert compile_pattern(pattern)(channel) is matches


@pytest.mark.parametrize("pattern", ["[", "[]", "[!]", "[a-]", "[z-a]", "[a-cx]", "chat:[ab"])
def test_refuses_what_the_glob_compiler_refuses(pattern: str) -> None:
    with pytest.raises(InvalidPattern):
        compile_pattern(pattern)
