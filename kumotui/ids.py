"""Ids for journal entries and run records: sortable by time, unique enough by the 100 µs.

Both the sysctl journal and the benchmark's run records name their files by
these ids, so they live below both rather than in either."""

from __future__ import annotations

from datetime import datetime


def new_id(now: datetime) -> str:
    """Sortable by time down to 100 µs, so an apply and its rollback in the
    same second still list in order."""
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 100:04d}"
