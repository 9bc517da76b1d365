"""Range selection over a list-kept stream (``history_use_lists``).

A Redis list cannot be ranged by offset, so the history script returns every kept publication and
this picks the range, with the same rules the stream script applies inside Redis.
See https://centrifugal.dev/docs/server/history_and_recovery.
"""

from __future__ import annotations

from rotary.engines.base import HistoryQuery
from rotary.protocol import pb

__all__ = ["select_range"]


def select_range(pubs: list[pb.Publication], top: int, query: HistoryQuery) -> list[pb.Publication]:
    """``pubs`` holds consecutive offsets ending at ``top``, oldest first."""
    if query.limit == 0 or not pubs:
        return []
    count = len(pubs) if query.limit < 0 else query.limit
    first = top - len(pubs) + 1
    since = query.since
    if not query.reverse:
        start = 0 if since is None else max(since.offset + 1 - first, 0)
        return pubs[start : start + count]
    end = len(pubs) if since is None else since.offset - first
    if since is not None and since.offset - 1 > top:
        return []
    end = min(end, len(pubs))
    if end <= 0:
        return []
    return pubs[max(end - count, 0) : end][::-1]
