"""Block-character glyphs for the live panes: CPU bars per core and sparklines.

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


SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters scaled from zero to their maximum, newest on the right.

    Plain text in one style: Textual's ``Sparkline`` writes a styled segment
    per bar (about 35 bytes a cell on every update), which over a slow SSH
    link is most of what a live screen sends; this costs 3 bytes a cell.
    """
    if width <= 0:
        return ""
    shown = list(values)[-width:]
    top = max(shown, default=0.0)
    last = len(SPARK_LEVELS) - 1
    bars = "".join(
        SPARK_LEVELS[min(last, max(0, round(value / top * last)))] if top > 0 else SPARK_LEVELS[0] for value in shown
    )
    return bars.rjust(width)


def trend_arrow(direction: str) -> str:
    """An arrow for a trend word (empty when there is no trend yet)."""
    return {"rising": "↗", "falling": "↘", "steady": "→"}.get(direction, "")
