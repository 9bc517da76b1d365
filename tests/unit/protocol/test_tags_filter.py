"""Tags filters: the documented examples match, comparisons behave at their edges, and malformed trees
are refused with the reason (https://centrifugal.dev/docs/server/publication_filtering)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotary.protocol import pb
from rotary.protocol.tags_filter import (
    MAX_DEPTH,
    MAX_NODES,
    InvalidTagsFilter,
    compile_filter,
    is_valid,
    validate,
)

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


def nested(depth: int) -> pb.FilterNode:
    """A chain of ``depth`` levels: ``not`` nodes around one leaf."""
    root = node = pb.FilterNode()
    for _ in range(depth - 1):
        node.op = "not"
        node = node.nodes.add()
    node.key, node.cmp = "a", "ex"
    return root


def test_depth_is_bounded() -> None:
    assert compile_filter(nested(MAX_DEPTH))({"a": "1"}) is (MAX_DEPTH % 2 == 1)
    with pytest.raises(InvalidTagsFilter, match=f"^filter is nested deeper than {MAX_DEPTH} levels$"):
        compile_filter(nested(MAX_DEPTH + 1))


def test_node_count_is_bounded() -> None:
    leaves = [pb.FilterNode(key="a", cmp="ex")] * (MAX_NODES - 1)
    assert compile_filter(pb.FilterNode(op="or", nodes=leaves))({"a": "1"})
    leaves.append(pb.FilterNode(key="b", cmp="ex"))
    with pytest.raises(InvalidTagsFilter, match=f"^filter has more than {MAX_NODES} nodes$"):
        compile_filter(pb.FilterNode(op="or", nodes=leaves))


def test_deep_tree_is_refused_without_exhausting_the_stack() -> None:
    """Thousands of levels (what a large frame can carry) are refused, not a RecursionError."""
    assert not is_valid(nested(5000))


def test_children_of_a_leaf_are_ignored() -> None:
    """centrifuge never looks below a leaf, so neither the shape nor the validity of its children counts."""
    node = pb.FilterNode(key="a", cmp="ex", nodes=[pb.FilterNode(op="xor")])
    assert compile_filter(node)({"a": "1"})


def evaluate(spec: dict[str, Any], tags: dict[str, str]) -> bool:
    """The documented semantics, written recursively over the spec as a reference."""
    op = spec.get("op", "")
    if op == "and":
        return all(evaluate(child, tags) for child in spec["nodes"])
    if op == "or":
        return any(evaluate(child, tags) for child in spec["nodes"])
    if op == "not":
        return not evaluate(spec["nodes"][0], tags)
    return compile_filter(tree(spec))(tags)


LEAVES = st.sampled_from(
    [leaf(key, "eq", "1") for key in "abc"]
    + [leaf(key, "ex") for key in "abc"]
    + [leaf("a", "in", vals=("2",))]
)
TREES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.builds(lambda nodes: {"op": "and", "nodes": nodes}, st.lists(children, min_size=1, max_size=4)),
        st.builds(lambda nodes: {"op": "or", "nodes": nodes}, st.lists(children, min_size=1, max_size=4)),
        st.builds(lambda node: {"op": "not", "nodes": [node]}, children),
    ),
    max_leaves=12,
)


@given(TREES, st.dictionaries(st.sampled_from("abc"), st.sampled_from(["1", "2"])))
def test_compiled_program_agrees_with_the_tree(spec: dict[str, Any], tags: dict[str, str]) -> None:
    assert compile_filter(tree(spec))(tags) is evaluate(spec, tags)
