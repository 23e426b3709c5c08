"""Job output as a person reads it: time, role, event, the figures that say something.

The built-in sink and generator print JSON lines (a progress reading every
half second, a summary, errors); kumod, traffic-gen and Postfix's tools
print text. Shown raw, a JSON line is cut at the screen's edge before its
first interesting figure. Here each line becomes ``0:07 gen  progress  sent
19,167 · 4,864 msgs/s · p99 13.8 ms``: JSON turned into its event and
non-zero figures (formatted as everywhere else), text kept as it is, both
made safe to show (colours dropped, control characters escaped).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kumotui.backends.lines import strip_ansi
from kumotui.text.escape import printable
from kumotui.text.format import format_count, format_eta, format_ms, format_rate

ALWAYS_SHOWN = frozenset({"sent", "received", "failed"})
"""Counters shown even at zero (a zero there is news)."""
NOT_SHOWN = frozenset({"type", "elapsed", "elapsed_worker", "latency_histogram", "ranges_accepted", "pid", "hist"})
"""Fields that are bookkeeping, or too long for a line (the run record keeps them)."""
FIELDS_SHOWN = 10
"""Figures at most per line; the log pane is one screen wide."""


def _figure(key: str, value: Any) -> str | None:
    """One ``name value`` pair, or None for a value not worth a place on the line."""
    if isinstance(value, bool):
        return key if value else None
    if isinstance(value, int):
        return f"{key} {format_count(value)}" if value or key in ALWAYS_SHOWN else None
    if isinstance(value, float):
        if key in ("msgs_per_s", "rate"):
            return f"{format_rate(value)} msgs/s" if value else None
        return f"{key} {value:g}" if value else None
    if isinstance(value, str):
        return f"{key} {value}" if value else None
    if isinstance(value, Mapping) and key.startswith(("latency", "delivery")):
        shown = [f"{p} {format_ms(float(value[p]))}" for p in ("p50", "p99") if isinstance(value.get(p), int | float)]
        return f"{key.split('_')[0]} {' · '.join(shown)} ms" if shown else None
    if isinstance(value, Mapping) and value:
        counts = [f"{k} {v}" for k, v in list(value.items())[:3]]
        return f"{key} " + ", ".join(counts)
    return None


def _event(data: Mapping[str, Any]) -> tuple[str, str]:
    """A JSON line's event word and its figures."""
    event = str(data.get("type", "line"))
    if event == "error":
        return event, str(data.get("error", ""))
    figures = [_figure(key, value) for key, value in data.items() if key not in NOT_SHOWN]
    shown = [figure for figure in figures if figure]
    return event, " · ".join(shown[:FIELDS_SHOWN]).replace("_", " ")


def readable_line(role: str, line: str, seconds: float) -> str:
    """``line`` of job ``role``'s output, read at ``seconds`` into the run, as the log pane shows it."""
    text = printable(strip_ansi(line), keep="").strip()
    data: object = None
    if text.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            data = None
    clock = format_eta(seconds)
    if isinstance(data, dict):
        event, figures = _event(data)
        return f"{clock} {role:<4} {event:<8} {printable(figures, keep='')}".rstrip()
    return f"{clock} {role:<4} {text}"
