"""Fossil deltas: the compact "copy this range, insert these bytes" encoding of one byte string
against another that delta subscriptions receive instead of whole publication data.

The format (https://fossil-scm.org/home/doc/tip/www/delta_format.wiki) is what the SDKs decode, so it
is followed exactly. The encoder follows the strategy of the published one
(https://fossil-scm.org/home/doc/tip/www/delta_encoder_algorithm.wiki): the source is cut into
landmark blocks, the target is scanned for a block that also occurs in the source, each hit is
grown in both directions, and a copy is emitted only when it is cheaper than inserting the bytes.
Python's hashing of byte slices stands in for the rolling hash, since it runs in C.
See https://centrifugal.dev/docs/server/delta_compression.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

BLOCK: Final = 16
"""Length of a landmark block; a source no longer than this is never copied from."""

_MAX_CANDIDATES: Final = 250
"""Source blocks with the same content tried per target position, newest first."""

_DIGITS: Final = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
_DIGIT_VALUE: Final = {byte: value for value, byte in enumerate(_DIGITS)}

_COLUMNS: Final = ((0, 24), (1, 16), (2, 8), (3, 0))


class DeltaError(ValueError):
    """A delta that is malformed or does not belong to the source it is applied to."""


def create(source: bytes, target: bytes) -> bytes:
    """A delta that turns ``source`` into ``target``."""
    out = [_int(len(target)), b"\n"]
    done = _copies(source, target, out) if len(source) > BLOCK else 0
    if done < len(target):
        out += (_int(len(target) - done), b":", target[done:])
    out += (_int(checksum(target)), b";")
    return b"".join(out)


def apply(source: bytes, delta: bytes) -> bytes:
    """The target that ``delta`` describes against ``source``; DeltaError when that fails."""
    reader = _Reader(delta)
    size = reader.integer()
    reader.expect(b"\n"[0])
    out = bytearray()
    while reader.more():
        count = reader.integer()
        command = reader.byte()
        if command == b";"[0]:
            return _verified(out, size, count)
        if command == b"@"[0]:
            offset = reader.integer()
            reader.expect(b","[0])
            if offset + count > len(source):
                raise DeltaError("copy reaches past the end of the source")
            out += source[offset : offset + count]
        elif command == b":"[0]:
            out += reader.take(count)
        else:
            raise DeltaError(f"unknown command {chr(command)!r}")
        if len(out) > size:
            raise DeltaError("output is longer than the header says")
    raise DeltaError("delta has no checksum")


def checksum(data: bytes | bytearray) -> int:
    """The 32-bit sum of ``data`` read as big-endian words, the last one padded with zero bytes.

    Summed a byte column at a time: the same total, without a Python int per word.
    """
    return sum(sum(data[column::4]) << shift for column, shift in _COLUMNS) & 0xFFFFFFFF


def _verified(out: bytearray, size: int, expected: int) -> bytes:
    if len(out) != size:
        raise DeltaError("output length differs from the header")
    if checksum(out) != expected:
        raise DeltaError("checksum mismatch")
    return bytes(out)


def _int(value: int) -> bytes:
    """``value`` in the format's base-64 digits, most significant first."""
    if value == 0:
        return b"0"
    digits = bytearray()
    while value:
        digits.append(_DIGITS[value & 63])
        value >>= 6
    digits.reverse()
    return bytes(digits)


def _width(value: int) -> int:
    """How many digits ``_int(value)`` has."""
    return max(1, (value.bit_length() + 5) // 6)


def _landmarks(source: bytes) -> dict[bytes, list[int]]:
    """Start offsets of the source's aligned blocks, by block content."""
    found: dict[bytes, list[int]] = {}
    for start in range(0, len(source) - BLOCK + 1, BLOCK):
        found.setdefault(source[start : start + BLOCK], []).append(start)
    return found


def _copies(source: bytes, target: bytes, out: list[bytes]) -> int:
    """Emits inserts and copies while matches are found; returns how much of target is covered."""
    landmarks = _landmarks(source)
    done = 0
    while done + BLOCK < len(target):
        found = _next_copy(source, target, done, landmarks)
        if found is None:
            break
        literal, count, offset = found
        if literal:
            out += (_int(literal), b":", target[done : done + literal])
        out += (_int(count), b"@", _int(offset), b",")
        done += literal + count
    return done


def _next_copy(
    source: bytes, target: bytes, done: int, landmarks: dict[bytes, list[int]]
) -> tuple[int, int, int] | None:
    """The first worthwhile copy at or after ``target[done]``: (literal bytes before it, length,
    source offset), or None when no block of the rest of the target occurs in the source."""
    for at in range(done, len(target) - BLOCK + 1):
        starts = landmarks.get(target[at : at + BLOCK])
        if starts is None:
            continue
        best = _best_match(source, target, done, at, starts)
        if best is not None:
            return best
    return None


def _best_match(
    source: bytes, target: bytes, done: int, at: int, starts: list[int]
) -> tuple[int, int, int] | None:
    """The longest match through ``target[at]`` whose copy command costs less than its bytes."""
    best: tuple[int, int, int] | None = None
    best_count = 0
    for start in reversed(starts[-_MAX_CANDIDATES:]):
        ahead = _ahead(source, start, target, at)
        behind = _behind(source, start, target, at, at - done)
        count = ahead + behind
        literal = at - behind - done
        offset = start - behind
        cost = _width(literal) + _width(count) + _width(offset) + 3
        if count >= cost and count > best_count:
            best, best_count = (literal, count, offset), count
    return best


def _ahead(source: bytes, start: int, target: bytes, at: int) -> int:
    """How many bytes from ``source[start]`` and ``target[at]`` on are equal."""

    def same(n: int) -> bool:
        return source[start : start + n] == target[at : at + n]

    return _run(same, min(len(source) - start, len(target) - at))


def _behind(source: bytes, start: int, target: bytes, at: int, limit: int) -> int:
    """How many bytes right before ``source[start]`` and ``target[at]`` are equal (at most ``limit``)."""

    def same(n: int) -> bool:
        return source[start - n : start] == target[at - n : at]

    return _run(same, min(start, limit))


def _run(same: Callable[[int], bool], limit: int) -> int:
    """The largest n <= limit with ``same(n)``, for a ``same`` that holds up to some n and not after.

    Probes grow geometrically, then a bisection finds the edge: few comparisons, each done in C.
    """
    good, step = 0, BLOCK
    while good < limit:
        probe = min(good + step, limit)
        if not same(probe):
            bad = probe
            break
        good, step = probe, step * 2
    else:
        return good
    while bad - good > 1:
        middle = (good + bad) // 2
        if same(middle):
            good = middle
        else:
            bad = middle
    return good


class _Reader:
    """A cursor over a delta that raises DeltaError instead of running off its end."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def more(self) -> bool:
        return self._pos < len(self._data)

    def byte(self) -> int:
        if self._pos >= len(self._data):
            raise DeltaError("delta ends early")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def expect(self, wanted: int) -> None:
        if self.byte() != wanted:
            raise DeltaError(f"expected {chr(wanted)!r}")

    def integer(self) -> int:
        value, start = 0, self._pos
        data = self._data
        while self._pos < len(data) and data[self._pos] in _DIGIT_VALUE:
            value = (value << 6) | _DIGIT_VALUE[data[self._pos]]
            self._pos += 1
        if self._pos == start:
            raise DeltaError("expected a number")
        return value

    def take(self, count: int) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise DeltaError("insert reaches past the end of the delta")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk
