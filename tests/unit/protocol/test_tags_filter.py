"""Tags filters: the documented examples match, comparisons behave at their edges, and malformed trees
are refused with the reason (https://centrifugal.dev/docs/server/publication_filtering)."""

from __future__ import annotations

from typing import Any

import pytest

from rotary.protocol import pb
from rotary.protocol.tags_filter import InvalidTagsFilter, compile_filter, is_valid, validate

TAGS = {"ticker": "AAPL", "source": "NASDAQ", "price": "150.25", "category": "tech", "volume": "1000"}


def leaf(key: str, cmp: str, val: str = "", vals: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"key": key, "cmp": cmp, "val": val, "vals": list(vals)}


def tree(spec: dict[str, Any]) -> pb.FilterNode:
    children = [tree(child) for child in spec.get("nodes", [])]
    fields = {k: v for k, v in spec.items() if k != "nodes"}
    return pb.FilterNode(nodes=children, **fields)


def matches(spec: dict[str, Any], tags: dict[str, str]) -> bool:
    return compile_filter(tree(spec))(pb.Publication(tags=tags).tags)


DOCUMENTED = [
    leaf("ticker", "eq", "AAPL"),
    leaf("source", "neq", "TEST"),
    leaf("category", "in", vals=("tech", "finance")),
    leaf("ticker", "nin", vals=("MSFT", "GOOGL")),
    leaf("price", "ex"),
    leaf("internal_id", "nex"),
    leaf("ticker", "sw", "AA"),
    leaf("source", "ew", "DAQ"),
    leaf("category", "ct", "ec"),
    leaf("price", "gt", "100"),
    leaf("volume", "gte", "1000"),
    leaf("price", "lt", "200"),
    leaf("volume", "lte", "1000"),
    {"op": "and", "nodes": [leaf("ticker", "eq", "AAPL"), leaf("category", "eq", "tech")]},
    {"op": "or", "nodes": [leaf("ticker", "eq", "MSFT"), leaf("category", "eq", "tech")]},
    {"op": "not", "nodes": [leaf("source", "eq", "NYSE")]},
]


@pytest.mark.parametrize("spec", DOCUMENTED)
def test_documented_examples_match(spec: dict[str, Any]) -> None:
    assert matches(spec, TAGS)


@pytest.mark.parametrize(
    ("spec", "tags", "expected"),
    [
        (leaf("ticker", "eq", "AAPL"), {}, False),
        (leaf("ticker", "neq", "AAPL"), {}, True),  # a missing tag differs from any value
        (leaf("ticker", "in", vals=("", "x")), {}, True),  # a missing tag compares as ""
        (leaf("ticker", "nin", vals=("x",)), {}, True),
        (leaf("ticker", "sw", "A"), {}, False),
        (leaf("price", "gt", "100"), {"price": "abc"}, False),
        (leaf("price", "gt", "100"), {}, False),
        (leaf("price", "gt", "oops"), {"price": "150"}, False),
        (leaf("price", "gt", "99.99"), {"price": "100"}, True),
        (leaf("price", "lt", "-1"), {"price": "-1.5"}, True),
        (leaf("price", "gte", "1e3"), {"price": "1000"}, False),  # exponents are not numbers here
        (leaf("price", "lte", "10.0"), {"price": "10"}, True),
        ({"op": "and", "nodes": [leaf("a", "ex"), leaf("b", "ex")]}, {"a": "1"}, False),
        ({"op": "or", "nodes": [leaf("a", "ex"), leaf("b", "ex")]}, {"b": "1"}, True),
        ({"op": "not", "nodes": [leaf("a", "ex")]}, {"a": "1"}, False),
    ],
)
def test_comparisons(spec: dict[str, Any], tags: dict[str, str], expected: bool) -> None:
    assert matches(spec, tags) is expected


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"key": "a"}, "leaf node must have cmp set"),
        (leaf("a", "eq"), "eq comparison requires val"),
        (leaf("a", "eq", "x", ("y",)), "eq comparison must not use vals"),
        (leaf("a", "in"), "in comparison requires non-empty vals"),
        (leaf("a", "nin", "x", ("y",)), "nin comparison must not use val"),
        (leaf("a", "ex", "x"), "ex comparison must not use val or vals"),
        (leaf("a", "like", "x"), "unknown comparison operator: like"),
        (leaf("", "eq", "x"), "leaf node requires key"),
        ({"op": "and"}, "and node must have at least one child"),
        ({"op": "not", "nodes": [leaf("a", "ex"), leaf("b", "ex")]}, "not node must have exactly one child"),
        ({"op": "xor", "nodes": [leaf("a", "ex")]}, "invalid op: xor"),
        ({"op": "or", "nodes": [leaf("a", "ex"), {"op": "not"}]}, "not node must have exactly one child"),
    ],
)
def test_malformed_trees_are_refused(spec: dict[str, Any], reason: str) -> None:
    node = tree(spec)
    with pytest.raises(InvalidTagsFilter, match=f"^{reason}$"):
        validate(node)
    with pytest.raises(InvalidTagsFilter):
        compile_filter(node)
    assert not is_valid(node)


def test_existence_checks_may_omit_the_key() -> None:
    assert is_valid(tree(leaf("", "nex")))
    assert matches(leaf("", "nex"), TAGS)
