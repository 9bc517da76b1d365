"""Pure decisions of stream recovery: did the history cover the client's gap, and how the
publications read from history merge with those buffered while subscribing.

See https://centrifugal.dev/docs/server/history_and_recovery ("Recovery" and "Delivery guarantees").
"""

from __future__ import annotations

from rotary.protocol import pb


def is_recovered(
    publications: list[pb.Publication],
    since_offset: int,
    since_epoch: str,
    top_offset: int,
    top_epoch: str,
    limit: int,
) -> bool:
    """True when the client missed nothing beyond what ``publications`` hold.

    Recovery is all or nothing: the epoch must match (an empty one means the client does not know it
    and accepts any, e.g. a position loaded from its own backend), and the publications must run
    contiguously from ``since_offset + 1`` up to the stream top without exceeding ``limit``.
    """
    if since_epoch and since_epoch != top_epoch:
        return False
    missed = top_offset - since_offset
    if missed < 0 or missed > limit:
        return False
    return len(publications) == missed and all(
        pub.offset == since_offset + i + 1 for i, pub in enumerate(publications)
    )


def merge_buffered(
    recovered: list[pb.Publication],
    buffered: list[tuple[pb.Publication, int, str]],
    top_offset: int,
    top_epoch: str,
) -> tuple[list[pb.Publication], bool]:
    """Appends buffered publications newer than what was recovered; False when they leave a gap.

    Buffered publications with offset 0 come from channels without history and are always kept.
    One of another epoch than the read's means the stream started over during the subscribe (its
    storage lost it): its offset does not compare with the read's, and taken as the next one it
    would set the subscriber's position ahead of the new stream, whose publications would then be
    skipped as duplicates. Nothing proves such a subscriber missed nothing, so it is a gap too.
    """
    merged = list(recovered)
    last = recovered[-1].offset if recovered else top_offset
    for pub, offset, epoch in buffered:
        if offset == 0:
            merged.append(pub)
            continue
        if epoch and top_epoch and epoch != top_epoch:
            return merged, False
        if offset <= last:
            continue
        if offset != last + 1:
            return merged, False
        merged.append(pub)
        last = offset
    return merged, True
