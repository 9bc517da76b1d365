"""Publication tags filters: validating a subscriber's FilterNode tree and matching tags against it.

A tree is checked once when the subscription starts and compiled into nested closures, so the fan-out
pays one call per subscriber and publication and never walks protobuf messages. Leaves compare one
tag: ``eq neq in nin ex nex sw ew ct gt gte lt lte``; branches combine children with ``and``, ``or``
or ``not``. A numeric comparison with a missing or non-numeric value is false, never an error.
See https://centrifugal.dev/docs/server/publication_filtering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Final

from rotary.protocol import pb

TagsMatcher = Callable[[Mapping[str, str]], bool]
"""A compiled filter: True when a publication with these tags is delivered."""
_LeafBuilder = Callable[[str, str, tuple[str, ...]], TagsMatcher]
"""Builds a leaf's matcher from its key, val and vals."""

_NEEDS_VAL: Final = frozenset({"eq", "neq", "sw", "ew", "ct", "gt", "gte", "lt", "lte"})
_NEEDS_VALS: Final = frozenset({"in", "nin"})
_NEEDS_NOTHING: Final = frozenset({"ex", "nex"})
_BRANCHES: Final = frozenset({"and", "or"})

_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class InvalidTagsFilter(ValueError):
    """A filter tree that is not well formed; subscribing with it is a bad request (107)."""


def validate(node: pb.FilterNode) -> None:
    """Raises InvalidTagsFilter, naming the first problem, unless the tree is well formed."""
    if node.op == "":
        _validate_leaf(node)
    elif node.op in _BRANCHES:
        if not node.nodes:
            raise InvalidTagsFilter(f"{node.op} node must have at least one child")
        for child in node.nodes:
            validate(child)
    elif node.op == "not":
        if len(node.nodes) != 1:
            raise InvalidTagsFilter("not node must have exactly one child")
        validate(node.nodes[0])
    else:
        raise InvalidTagsFilter(f"invalid op: {node.op}")


def is_valid(node: pb.FilterNode) -> bool:
    try:
        validate(node)
    except InvalidTagsFilter:
        return False
    return True


def _validate_leaf(node: pb.FilterNode) -> None:
    cmp = node.cmp
    if cmp == "":
        raise InvalidTagsFilter("leaf node must have cmp set")
    if cmp in _NEEDS_VAL:
        if node.val == "":
            raise InvalidTagsFilter(f"{cmp} comparison requires val")
        if node.vals:
            raise InvalidTagsFilter(f"{cmp} comparison must not use vals")
    elif cmp in _NEEDS_VALS:
        if not node.vals:
            raise InvalidTagsFilter(f"{cmp} comparison requires non-empty vals")
        if node.val != "":
            raise InvalidTagsFilter(f"{cmp} comparison must not use val")
    elif cmp in _NEEDS_NOTHING:
        if node.val != "" or node.vals:
            raise InvalidTagsFilter(f"{cmp} comparison must not use val or vals")
    else:
        raise InvalidTagsFilter(f"unknown comparison operator: {cmp}")
    if node.key == "" and cmp not in _NEEDS_NOTHING:
        raise InvalidTagsFilter("leaf node requires key")


def compile_filter(node: pb.FilterNode) -> TagsMatcher:
    """The matcher of a tree, after validating it (InvalidTagsFilter when it is not well formed)."""
    validate(node)
    return _compile(node)


def _compile(node: pb.FilterNode) -> TagsMatcher:
    if node.op == "":
        return _LEAVES[node.cmp](node.key, node.val, tuple(node.vals))
    children = tuple(_compile(child) for child in node.nodes)
    if node.op == "and":
        return lambda tags: all(child(tags) for child in children)
    if node.op == "or":
        return lambda tags: any(child(tags) for child in children)
    only = children[0]
    return lambda tags: not only(tags)


def _number(text: str) -> Decimal | None:
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def _numeric(accept: Callable[[Decimal, Decimal], bool]) -> _LeafBuilder:
    """A leaf comparing the tag as a decimal number with ``val``; false when either is not one."""

    def build(key: str, val: str, vals: tuple[str, ...]) -> TagsMatcher:
        bound = _number(val)
        if bound is None:
            return lambda tags: False

        def match(tags: Mapping[str, str]) -> bool:
            value = tags.get(key)
            number = None if value is None else _number(value)
            return number is not None and accept(number, bound)

        return match

    return build


def _present(test: Callable[[str, str], bool]) -> _LeafBuilder:
    """A leaf that holds when the tag exists and ``test(tag, val)``."""

    def build(key: str, val: str, vals: tuple[str, ...]) -> TagsMatcher:
        def match(tags: Mapping[str, str]) -> bool:
            value = tags.get(key)
            return value is not None and test(value, val)

        return match

    return build


def _not_equal(key: str, val: str, vals: tuple[str, ...]) -> TagsMatcher:
    return lambda tags: tags.get(key) != val


def _member(key: str, val: str, vals: tuple[str, ...]) -> TagsMatcher:
    """A missing tag counts as the empty string, so ``in`` with "" among the values matches it."""
    members = frozenset(vals)
    return lambda tags: tags.get(key, "") in members


def _not_member(key: str, val: str, vals: tuple[str, ...]) -> TagsMatcher:
    members = frozenset(vals)
    return lambda tags: tags.get(key, "") not in members


def _exists(key: str, val: str, vals: tuple[str, ...]) -> TagsMatcher:
    return lambda tags: key in tags


def _absent(key: str, val: str, vals: tuple[str, ...]) -> TagsMatcher:
    return lambda tags: key not in tags


_LEAVES: Final[dict[str, _LeafBuilder]] = {
    "eq": _present(str.__eq__),
    "neq": _not_equal,
    "in": _member,
    "nin": _not_member,
    "ex": _exists,
    "nex": _absent,
    "sw": _present(str.startswith),
    "ew": _present(str.endswith),
    "ct": _present(str.__contains__),
    "gt": _numeric(Decimal.__gt__),
    "gte": _numeric(Decimal.__ge__),
    "lt": _numeric(Decimal.__lt__),
    "lte": _numeric(Decimal.__le__),
}
"""Comparison operator -> builder of its leaf matcher from (key, val, vals)."""
