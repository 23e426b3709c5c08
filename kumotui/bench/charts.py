"""Charts as plain data: curves over a run's time, bounded however long it lasts, and drawn as SVG.

The app's benchmark screen plots a live run's curves (msgs/s sent and
delivered, latency p50/p99, CPU per core); the runs screen overlays two
saved runs' curves; the HTML report draws the same curves as SVG for people
who will not open a terminal. All three take their points from here, so a
figure on the screen and in the report is the same figure. Nothing here
imports Textual: the SVG is written by hand (a few polylines with axes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from kumotui.backends.samples import Sample

CHART_POINTS = 240
"""Points a live chart keeps per curve: two minutes at the 2 Hz a run is read at, then the
whole run at half the resolution each time the bound is reached (memory stays flat)."""
CPU_LINES = 8
"""Cores drawn one line each; beyond that, the busiest, the average and the least busy."""


@dataclass(frozen=True)
class Curve:
    """One named line: ``(seconds since the run started, value)`` points, oldest first."""

    name: str
    points: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Chart:
    """A chart's curves and what its axes mean."""

    title: str
    unit: str
    """The y axis' unit (``msgs/s``, ``ms``, ``%``); the x axis is seconds."""
    curves: tuple[Curve, ...] = ()
    y_max: float | None = None
    """A fixed top of the y axis (100 for CPU percent), or None to fit the data."""

    @property
    def empty(self) -> bool:
        """Whether there is nothing to draw yet."""
        return not any(curve.points for curve in self.curves)


class Trail:
    """Points of several curves sharing one time axis, at most ``limit`` of them.

    When the bound is reached every other point is dropped and from then on
    only every second reading is taken (then every fourth, ...), so the
    trail always spans the whole run at an even resolution, in fixed memory.
    """

    def __init__(self, names: Sequence[str], limit: int = CHART_POINTS) -> None:
        """Curves named ``names``; ``limit`` (at least 2) points kept."""
        if limit < 2:
            raise ValueError("limit must be at least 2")
        self.names = tuple(names)
        self.limit = limit
        self.stride = 1
        self._seen = 0
        self._rows: list[tuple[float, tuple[float | None, ...]]] = []

    def add(self, seconds: float, values: Sequence[float | None]) -> None:
        """One reading: a value (or None, a gap) per curve, in the order of :attr:`names`."""
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self._rows.append((seconds, tuple(values)))
        if len(self._rows) >= self.limit:
            self._rows = self._rows[::2]
            self.stride *= 2

    def __len__(self) -> int:
        """Readings kept."""
        return len(self._rows)

    def curves(self) -> tuple[Curve, ...]:
        """The kept points as one :class:`Curve` per name (None values left out)."""
        return tuple(
            Curve(name, tuple((t, values[i]) for t, values in self._rows if values[i] is not None))  # type: ignore[misc]
            for i, name in enumerate(self.names)
        )


def cpu_curve_names(cores: int) -> tuple[str, ...]:
    """The CPU chart's curves: one per core up to :data:`CPU_LINES`, else busiest/average/least."""
    if cores <= CPU_LINES:
        return tuple(f"cpu{i}" for i in range(cores))
    return ("busiest", "average", "least busy")


def cpu_values(per_core: Sequence[float]) -> tuple[float, ...]:
    """One reading's values for :func:`cpu_curve_names` (same order)."""
    if len(per_core) <= CPU_LINES:
        return tuple(per_core)
    return (max(per_core), sum(per_core) / len(per_core), min(per_core))


# --- saved runs ---------------------------------------------------------------------


def _points(series: Iterable[Sample], role: str, value: str) -> tuple[tuple[float, float], ...]:
    points = []
    for sample in series:
        if sample.role != role:
            continue
        number = sample.rate if value == "rate" else (sample.latency_ms or {}).get(value)
        if number is not None:
            points.append((sample.elapsed, float(number)))
    return tuple(points)


def run_charts(series: Sequence[Sample], *, delivered_name: str = "received") -> tuple[Chart, Chart]:
    """A saved run's msgs/s (sent, and the sink's count) and latency p50/p99 charts from its series."""
    throughput = Chart(
        "Messages per second",
        "msgs/s",
        (Curve("sent", _points(series, "generator", "rate")), Curve(delivered_name, _points(series, "sink", "rate"))),
    )
    latency = Chart(
        "Transaction latency",
        "ms",
        (Curve("p50", _points(series, "generator", "p50")), Curve("p99", _points(series, "generator", "p99"))),
    )
    return throughput, latency


def overlay_charts(a: Sequence[Sample], b: Sequence[Sample]) -> tuple[Chart, Chart]:
    """Two saved runs on the same axes: each one's msgs/s sent, each one's p99 latency."""
    throughput = Chart(
        "Messages per second sent, A vs B",
        "msgs/s",
        (Curve("A sent", _points(a, "generator", "rate")), Curve("B sent", _points(b, "generator", "rate"))),
    )
    latency = Chart(
        "Latency p99, A vs B",
        "ms",
        (Curve("A p99", _points(a, "generator", "p99")), Curve("B p99", _points(b, "generator", "p99"))),
    )
    return throughput, latency


# --- axes -----------------------------------------------------------------------------


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top`` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def tick_label(value: float) -> str:
    """A tick's label: ``0``, ``2.5``, ``800``, ``12k``, ``1.5M`` (axes have little room)."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def y_top(chart: Chart) -> float:
    """The top of a chart's y axis: its fixed maximum, else the largest value (at least 1)."""
    if chart.y_max is not None:
        return chart.y_max
    return max((v for curve in chart.curves for _, v in curve.points), default=1.0) or 1.0


def x_span(charts: Iterable[Chart]) -> tuple[float, float]:
    """The seconds the charts' x axis covers: from the run's start to the last point (at least 1 s)."""
    last = max((t for chart in charts for curve in chart.curves for t, _ in curve.points), default=1.0)
    return 0.0, max(last, 1.0)


# --- SVG ---------------------------------------------------------------------------------

SVG_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
"""Line colours, in curve order (distinct on white, and for most colour vision)."""


def chart_svg(chart: Chart, width: int = 640, height: int = 240) -> str:
    """``chart`` as a standalone SVG: axes with ticks and units, one polyline per curve, a legend."""
    left, right, top, bottom = 56, 12, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    x0, x1 = x_span([chart])
    ticks = nice_ticks(y_top(chart))
    y_hi = ticks[-1]

    def x(seconds: float) -> float:
        return left + (seconds - x0) / (x1 - x0) * plot_w

    def y(value: float) -> float:
        return top + plot_h - min(value, y_hi) / y_hi * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(chart.title)}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(chart.title)}</text>',
    ]
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{ty + 4:.1f}" text-anchor="end">{tick_label(tick)}</text>'
        )
    for tick in nice_ticks(x1 - x0, 5):
        if tick > x1 - x0:
            break
        tx = x(x0 + tick)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top + plot_h}" x2="{tx:.1f}" y2="{top + plot_h + 4}" stroke="#333"/>'
            f'<text x="{tx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tick_label(x0 + tick)}</text>'
        )
    parts.append(
        f'<polyline points="{left},{top} {left},{top + plot_h} {left + plot_w},{top + plot_h}" '
        'fill="none" stroke="#333"/>'
        f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end">seconds</text>'
        f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(chart.unit)}</text>'
    )
    legend_x = left + 8
    for index, curve in enumerate(chart.curves):
        colour = SVG_COLOURS[index % len(SVG_COLOURS)]
        if curve.points:
            coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in curve.points)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        label = escape(curve.name + ("" if curve.points else " (no data)"))
        parts.append(
            f'<rect x="{legend_x}" y="{top + 4}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{top + 9}">{label}</text>'
        )
        legend_x += 24 + 7 * len(label)
    parts.append("</svg>")
    return "\n".join(parts)
