"""Channel patterns of the `channels` API method, as Centrifugo compiles them (github.com/gobwas/glob,
no separators).

``*`` matches any run of characters, ``?`` any one, ``[abc]`` / ``[a-z]`` a class (``[!...]`` or
``[^...]`` its complement), ``{one,two}`` any of the alternatives (which may nest), and ``\\``
escapes the next character. Only a character class can fail to compile: an unclosed ``[``, an empty
class and a range that is not exactly ``[lo-hi]`` with ``lo <= hi``; Centrifugo then answers with
error 100. See https://centrifugal.dev/docs/server/server_api#channels.
"""

from __future__ import annotations

import re
from collections.abc import Callable

NEGATIONS = "!^"

ChannelMatcher = Callable[[str], bool]


class InvalidPattern(ValueError):
    """A pattern the glob compiler refuses."""


def compile_pattern(pattern: str) -> ChannelMatcher:
    """A matcher of whole channel names; InvalidPattern if Centrifugo would refuse the pattern."""
    regex = re.compile(_translate(pattern), re.DOTALL)
    return lambda channel: regex.fullmatch(channel) is not None


def _translate(pattern: str) -> str:
    out: list[str] = []
    depth = 0
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(re.escape(pattern[index + 1 : index + 2]))
            index += 2
            continue
        if char == "[":
            end = _class_end(pattern, index + 1)
            out.append(_class(pattern[index + 1 : end]))
            index = end + 1
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out) + ")" * depth


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the class whose content begins at ``start``."""
    if start < len(pattern) and pattern[start] in NEGATIONS:
        start += 1
    if start + 1 < len(pattern) and pattern[start + 1] == "-":
        closing = start + 3
        if closing >= len(pattern) or pattern[closing] != "]" or pattern[start] > pattern[start + 2]:
            raise InvalidPattern(f"bad range in {pattern!r}")
        return closing
    index = start
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    if index >= len(pattern) or index == start:
        raise InvalidPattern(f"unclosed or empty character class in {pattern!r}")
    return index


def _class(body: str) -> str:
    negated = body[:1] in tuple(NEGATIONS)
    if negated:
        body = body[1:]
    if len(body) == 3 and body[1] == "-":
        inner = f"{re.escape(body[0])}-{re.escape(body[2])}"
    else:
        inner = "".join(re.escape(c) for c in body.replace("\\", ""))
    return f"[{'^' if negated else ''}{inner}]"
