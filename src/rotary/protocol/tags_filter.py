"""Publication tags filters: validating a subscriber's FilterNode tree and matching tags against it.

A tree is checked once when the subscription starts and compiled into a flat branching program, so the
fan-out pays one short loop per subscriber and publication and never walks protobuf messages. Leaves
compare one tag: ``eq neq in nin ex nex sw ew ct gt gte lt lte``; branches combine children with
``and``, ``or`` or ``not``. A numeric comparison with a missing or non-numeric value is false, never an
error. See https://centrifugal.dev/docs/server/publication_filtering.

Nothing here recurses: a client controls the tree's shape, and a tree nested deeper than Python's stack
must be refused (error 107), not crash the fan-out. centrifuge sets no explicit bound (only the
message size limit does); rotary refuses trees deeper than MAX_DEPTH or larger than MAX_NODES.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from rotary.protocol import pb

TagsMatcher = Callable[[Mapping[str, str]], bool]
"""A compiled filter: True when a publication with these tags is delivered."""
_LeafBuilder = Callable[[str, str, tuple[str, ...]], TagsMatcher]
"""Builds a leaf's matcher from its key, val and vals."""

MAX_DEPTH: Final = 64
"""Levels a tree may have, the root being level 1. Far beyond a filter written by hand, and below what
either encoding can carry (about 99 levels in a Command: see json_mapping.MAX_NESTED_MESSAGES), so a
deep tree gets the same 107 whichever encoding brought it."""
MAX_NODES: Final = 1000
"""Nodes a tree may have; each leaf costs a comparison per publication on the fan-out path."""

_NEEDS_VAL: Final = frozenset({"eq", "neq", "sw", "ew", "ct", "gt", "gte", "lt", "lte"})
_NEEDS_VALS: Final = frozenset({"in", "nin"})
_NEEDS_NOTHING: Final = frozenset({"ex", "nex"})
_BRANCHES: Final = frozenset({"and", "or"})

_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")

_ACCEPT: Final = -1
"""Branch target ending a match with True."""
_REJECT: Final = -2
"""Branch target ending a match with False."""


class InvalidTagsFilter(ValueError):
    """A filter tree that is not well formed; subscribing with it is a bad request (107)."""


@dataclass(slots=True)
class _Entry:
    """One node of a tree flattened in pre-order: children always come after their parent."""

    node: pb.FilterNode
    children: list[int]
    first_leaf: int = 0
    """Program index of the leftmost leaf below this node, where evaluating the node starts."""


def validate(node: pb.FilterNode) -> None:
    """Raises InvalidTagsFilter, naming the first problem, unless the tree is well formed."""
    _flatten(node)


def is_valid(node: pb.FilterNode) -> bool:
    try:
        validate(node)
    except InvalidTagsFilter:
        return False
    return True


def _flatten(root: pb.FilterNode) -> list[_Entry]:
    """The checked tree in pre-order, leaves left to right; walked with an explicit stack."""
    entries: list[_Entry] = []
    pending: list[tuple[pb.FilterNode, int, int]] = [(root, 1, -1)]  # node, depth, parent entry
    while pending:
        node, depth, parent = pending.pop()
        if depth > MAX_DEPTH:
            raise InvalidTagsFilter(f"filter is nested deeper than {MAX_DEPTH} levels")
        if len(entries) == MAX_NODES:
            raise InvalidTagsFilter(f"filter has more than {MAX_NODES} nodes")
        _validate_node(node)
        index = len(entries)
        entries.append(_Entry(node, []))
        if parent >= 0:
            entries[parent].children.append(index)
        if node.op != "":  # a leaf's children are never looked at, as in centrifuge
            pending.extend((child, depth + 1, index) for child in reversed(node.nodes))
    return entries


def _validate_node(node: pb.FilterNode) -> None:
    if node.op == "":
        _validate_leaf(node)
    elif node.op in _BRANCHES:
        if not node.nodes:
            raise InvalidTagsFilter(f"{node.op} node must have at least one child")
    elif node.op == "not":
        if len(node.nodes) != 1:
            raise InvalidTagsFilter("not node must have exactly one child")
    else:
        raise InvalidTagsFilter(f"invalid op: {node.op}")


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
    """The matcher of a tree, after validating it (InvalidTagsFilter when it is not well formed).

    The tree becomes a branching program: one step per leaf, each naming the step to go to when its
    leaf holds and when it does not. ``and`` and ``or`` short-circuit by their children's targets and
    ``not`` swaps them, so a match visits each leaf at most once, in the tree's order, with no stack.
    """
    entries = _flatten(node)
    leaves = [entry.node for entry in entries if entry.node.op == ""]
    if len(leaves) == len(entries):  # a lone leaf: its own matcher is the fastest program
        return _leaf_matcher(leaves[0])
    return _run(_program(entries, leaves))


_Step = tuple[TagsMatcher, int, int]
"""A leaf's matcher and the program index to continue at when it holds and when it does not."""


def _program(entries: list[_Entry], leaves: list[pb.FilterNode]) -> tuple[_Step, ...]:
    leaf_numbers = iter(range(len(leaves)))
    for entry in entries:  # pre-order numbers the leaves left to right
        if entry.node.op == "":
            entry.first_leaf = next(leaf_numbers)
    for entry in reversed(entries):  # children before parents
        if entry.children:
            entry.first_leaf = entries[entry.children[0]].first_leaf
    targets: dict[int, tuple[int, int]] = {0: (_ACCEPT, _REJECT)}
    steps: list[_Step] = []
    for index, entry in enumerate(entries):  # parents before children
        on_true, on_false = targets.pop(index)
        op = entry.node.op
        if op == "":
            steps.append((_leaf_matcher(entry.node), on_true, on_false))
        elif op == "not":
            targets[entry.children[0]] = (on_false, on_true)
        else:
            for child, sibling in zip(entry.children, [*entry.children[1:], None], strict=True):
                rest = None if sibling is None else entries[sibling].first_leaf
                if op == "and":  # a child that holds moves on to the next one; one that fails, fails all
                    targets[child] = (on_true if rest is None else rest, on_false)
                else:  # or: a child that holds decides; one that fails moves on
                    targets[child] = (on_true, on_false if rest is None else rest)
    return tuple(steps)


def _run(program: tuple[_Step, ...]) -> TagsMatcher:
    def match(tags: Mapping[str, str]) -> bool:
        step = 0
        while step >= 0:
            holds, on_true, on_false = program[step]
            step = on_true if holds(tags) else on_false
        return step == _ACCEPT

    return match


def _leaf_matcher(node: pb.FilterNode) -> TagsMatcher:
    return _LEAVES[node.cmp](node.key, node.val, tuple(node.vals))


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
