"""Block-character glyphs for the live panes: CPU bars per core and trend arrows.

Plain text in one style, so a live screen sends a few bytes per cell over a
slow SSH link instead of a styled segment per bar."""

from __future__ import annotations

import math
from collections.abc import Sequence

BAR_LEVELS = " ▁▂▃▄▅▆▇█"


def cpu_bars(percents: Sequence[float], width: int = 64) -> str:
    """One block character per core, its height the core's load; cores are averaged
    in groups when there are more than ``width``, so 192 cores still fit a line."""
    if not percents:
        return ""
    group = math.ceil(len(percents) / max(width, 1))
    loads = [sum(percents[i : i + group]) / len(percents[i : i + group]) for i in range(0, len(percents), group)]
    top = len(BAR_LEVELS) - 1
    return "".join(BAR_LEVELS[min(top, max(0, math.ceil(load / 100 * top)))] for load in loads)


def trend_arrow(direction: str) -> str:
    """An arrow for a trend word (empty when there is no trend yet)."""
    return {"rising": "↗", "falling": "↘", "steady": "→"}.get(direction, "")
