"""The hot-path verdicts of a subscription and the pure recovery decisions."""

from __future__ import annotations

import pytest

from rotary.protocol import pb
from rotary.session.channels import ChannelState, SubscriptionStatus, Verdict
from rotary.session.recovery import is_recovered, merge_buffered


def pubs(*offsets: int) -> list[pb.Publication]:
    return [pb.Publication(offset=o) for o in offsets]


@pytest.mark.parametrize(
    ("status", "positioned", "at", "offset", "verdict", "after"),
    [
        (SubscriptionStatus.SUBSCRIBING, True, 5, 6, Verdict.BUFFER, 5),
        (SubscriptionStatus.SUBSCRIBED, False, 0, 9, Verdict.DELIVER, 0),
        (SubscriptionStatus.SUBSCRIBED, True, 5, 6, Verdict.DELIVER, 6),
        (SubscriptionStatus.SUBSCRIBED, True, 5, 5, Verdict.SKIP, 5),
        (SubscriptionStatus.SUBSCRIBED, True, 5, 3, Verdict.SKIP, 5),
        (SubscriptionStatus.SUBSCRIBED, True, 5, 7, Verdict.GAP, 5),
        (SubscriptionStatus.SUBSCRIBED, True, 5, 0, Verdict.DELIVER, 5),
    ],
)
def test_accept(
    status: SubscriptionStatus, positioned: bool, at: int, offset: int, verdict: Verdict, after: int
) -> None:
    state = ChannelState("ch", status=status, positioned=positioned, offset=at)
    assert state.accept(offset) is verdict
    assert state.offset == after


@pytest.mark.parametrize(
    ("found", "since", "epoch", "top", "limit", "expected"),
    [
        (pubs(3, 4), 2, "e", 4, 10, True),
        (pubs(), 4, "e", 4, 10, True),
        (pubs(3, 4), 2, "x", 4, 10, False),
        (pubs(4), 2, "e", 4, 10, False),
        (pubs(3, 4, 5), 2, "e", 5, 2, False),
        (pubs(), 7, "e", 4, 10, False),
        (pubs(3, 4), 2, "", 4, 10, True),
    ],
)
def test_is_recovered(
    found: list[pb.Publication], since: int, epoch: str, top: int, limit: int, expected: bool
) -> None:
    assert is_recovered(found, since, epoch, top, "e", limit) is expected


def test_merge_skips_duplicates_and_appends_newer() -> None:
    merged, ok = merge_buffered(pubs(3, 4), [(p, p.offset, "e") for p in pubs(4, 5, 6)], 4, "e")
    assert ok and [p.offset for p in merged] == [3, 4, 5, 6]


def test_merge_detects_gap() -> None:
    _, ok = merge_buffered([], [(p, p.offset, "e") for p in pubs(6)], 4, "e")
    assert not ok


def test_merge_takes_a_buffered_publication_of_another_epoch_as_a_gap() -> None:
    """The stream started over during the subscribe: offset 5 of the old epoch is not the new
    stream's next, though it looks like it."""
    _, ok = merge_buffered([], [(p, p.offset, "old") for p in pubs(5)], 4, "new")
    assert not ok


def test_merge_compares_offsets_when_either_epoch_is_unknown() -> None:
    merged, ok = merge_buffered([], [(p, p.offset, "") for p in pubs(5)], 4, "e")
    assert ok and [p.offset for p in merged] == [5]


def test_merge_keeps_offsetless_publications() -> None:
    merged, ok = merge_buffered([], [(pb.Publication(data=b"1"), 0, "")], 0, "")
    assert ok and len(merged) == 1


def test_another_epoch_is_a_gap_even_when_offsets_look_seen() -> None:
    state = ChannelState("ch", status=SubscriptionStatus.SUBSCRIBED, positioned=True, offset=5, epoch="old")
    assert state.accept(1, "new") is Verdict.GAP
    assert state.offset == 5 and state.epoch == "old"


def test_subscriber_without_epoch_adopts_the_first_one() -> None:
    state = ChannelState("ch", status=SubscriptionStatus.SUBSCRIBED, positioned=True, offset=0)
    assert state.accept(1, "e") is Verdict.DELIVER
    assert state.epoch == "e" and state.offset == 1
    assert state.accept(2, "e") is Verdict.DELIVER
