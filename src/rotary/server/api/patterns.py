"""Which ``channels`` API patterns Centrifugo refuses.

Centrifugo compiles the pattern as a glob (github.com/gobwas/glob) and answers a pattern that does
not compile with the internal error 100. Only character classes can fail to compile: an unclosed
``[``, an empty class (``[]``, ``[!]``), and a range that is not exactly ``[lo-hi]`` with
``lo <= hi``; braces, ``*``, ``?`` and a trailing backslash always compile.
See https://centrifugal.dev/docs/server/server_api#channels.
"""

from __future__ import annotations

NEGATIONS = "!^"


def compiles(pattern: str) -> bool:
    """Whether Centrifugo's glob compiler accepts ``pattern``."""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
        elif char == "[":
            end = _class_end(pattern, index + 1)
            if end < 0:
                return False
            index = end + 1
        else:
            index += 1
    return True


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the class whose content begins at ``start``; -1 if invalid."""
    if start < len(pattern) and pattern[start] in NEGATIONS:
        start += 1
    if start + 1 < len(pattern) and pattern[start + 1] == "-":
        closing = start + 3
        if closing >= len(pattern) or pattern[closing] != "]" or pattern[start] > pattern[start + 2]:
            return -1
        return closing
    index = start
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    if index >= len(pattern) or index == start:
        return -1
    return index
