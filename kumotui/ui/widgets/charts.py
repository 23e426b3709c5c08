"""Charts of a run over time, drawn by Plotext through Textual's own wrapper (``textual-plotext``).

A :class:`ChartPlot` shows one :class:`~kumotui.bench.charts.Chart` (plain
data from the core) with axes, tick labels and units, its curves in braille
lines. The live benchmark screen shows three side by side (msgs/s, latency,
CPU per core) and the runs screen overlays two saved runs. A chart redraws
only when its points changed; while a run goes each chart is redrawn every
:data:`REDRAW_EVERY` readings, the charts of a row in turn (one per reading
at most), and with no more points than the plot has braille dots across.
Measured with ``perf/ui_cost.py``: a Plotext frame is a few kilobytes of
styled text and tens of milliseconds of Python, and the app's budget is
10% of a core and 30 kB/s to the terminal for the whole screen.
"""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual_plotext import PlotextPlot

from kumotui.bench.charts import Chart, nice_ticks, tick_label, x_span, y_top

REDRAW_EVERY = 4
"""Readings per redraw of a live chart: every 2 s at the run's 2 Hz (the panes' figures move at 2 Hz).
Counted in readings, not seconds, so a scripted run draws the same charts every time."""
COMPACT_HEIGHT = 9
"""Rows below which a chart names its curves in the title instead of a legend over the data (80x24)."""


class ChartPlot(PlotextPlot):
    """One chart: title with unit, y ticks from zero, seconds on the x axis, a legend of its curves."""

    DEFAULT_CSS = """
    ChartPlot {
        width: 1fr;
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        """An empty chart."""
        super().__init__(name=name, id=id, classes=classes)
        self.chart: Chart | None = None
        """The chart shown (tests read it)."""

    def show(self, chart: Chart) -> None:
        """Show ``chart`` if it differs from the one shown."""
        if chart != self.chart:
            self.chart = chart
            self.draw()

    def clear(self) -> None:
        """No chart (a new run starts)."""
        self.chart = None
        self.draw()

    def on_resize(self) -> None:
        """Drawn again for the new size (compact or not)."""
        if self.chart is not None:
            self.draw()

    @property
    def compact(self) -> bool:
        """Too few rows for a legend inside the plot: the title names the curves instead."""
        return 0 < self.size.height < COMPACT_HEIGHT

    def draw(self) -> None:
        """Set up Plotext with the chart's curves and axes; Textual renders it at the widget's size."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        chart = self.chart
        if chart is None:
            self.refresh()
            return
        if chart.empty:
            plt.title(f"{chart.title}: no readings")
            self.refresh()
            return
        names = [curve.name for curve in chart.curves if curve.points]
        compact = self.compact
        named = f"{chart.title}: {', '.join(names)}"
        plt.title(named if compact and names and len(named) <= self.size.width - 2 else chart.title)
        _, last = x_span([chart])
        top = nice_ticks(y_top(chart), 2 if compact else 3)
        plt.ylim(0, top[-1])
        plt.yticks(top, [tick_label(t) for t in top])
        plt.xlim(0, last)
        x_ticks = [t for t in nice_ticks(last, 3) if t <= last]
        plt.xticks(x_ticks, [tick_label(t) + ("s" if t == x_ticks[-1] else "") for t in x_ticks])
        dots = max(2, 2 * self.size.width)  # braille: two dots across a cell
        for curve in chart.curves:
            if curve.points:
                points = curve.points[:: math.ceil(len(curve.points) / dots)]
                xs = [t for t, _ in points]
                ys = [min(v, top[-1]) for _, v in points]
                plt.plot(xs, ys, marker="braille", label=None if compact else curve.name)
        self.refresh()


class ChartRow(Horizontal):
    """Charts side by side, each as wide as the others."""

    DEFAULT_CSS = """
    ChartRow {
        height: 1fr;
        min-height: 7;
        & > ChartPlot { margin-right: 1; }
        & > ChartPlot:last-of-type { margin-right: 0; }
    }
    """

    def __init__(
        self,
        count: int,
        *,
        every: int = 1,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """A row of ``count`` charts, each redrawn every ``every`` readings (in turn), or every one with 1."""
        super().__init__(name=name, id=id, classes=classes)
        self.count = count
        self.every = every
        self._readings = 0

    def compose(self) -> ComposeResult:
        """The charts."""
        for _ in range(self.count):
            yield ChartPlot()

    def show(self, *charts: Chart, force: bool = False) -> None:
        """One chart per plot, in order: the plots whose turn it is, or all of them with ``force``.

        Plot ``i`` redraws when ``(reading + i) % every == 0``: one plot per
        reading at most, so neither the CPU nor the bytes come in bursts.
        """
        self._readings += 1
        for index, (plot, chart) in enumerate(zip(self.query(ChartPlot), charts, strict=False)):
            if force or plot.chart is None or (self._readings + index) % self.every == 0:
                plot.show(chart)

    def clear(self) -> None:
        """Every plot empty."""
        for plot in self.query(ChartPlot):
            plot.clear()
