"""Charts of a run over time, drawn by Plotext through Textual's own wrapper (``textual-plotext``).

A :class:`ChartPlot` shows one :class:`~kumotui.bench.charts.Chart` (plain
data from the core) with axes, tick labels and units, its curves in braille
lines. The live benchmark screen shows three side by side (msgs/s, latency,
CPU per core) and the runs screen overlays two saved runs. A chart redraws
only when its points changed, and while a run goes only every
:data:`REDRAW_EVERY` readings: a Plotext frame is a few kilobytes of styled
text, and the app's budget over SSH is 30 kB/s for the whole screen.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual_plotext import PlotextPlot

from kumotui.bench.charts import Chart, nice_ticks, tick_label, x_span, y_top

REDRAW_EVERY = 2
"""Readings per redraw of a live chart: once a second at the run's 2 Hz (the panes' figures move at 2 Hz).
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

    def __init__(
        self, *, every: int = 1, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        """An empty chart, redrawn on every ``every``-th changed chart it is shown."""
        super().__init__(name=name, id=id, classes=classes)
        self.every = every
        self.chart: Chart | None = None
        """The chart shown (tests read it)."""
        self._waiting = 0

    def show(self, chart: Chart, *, force: bool = False) -> None:
        """Show ``chart`` if it changed, on every ``every``-th change (or now, with ``force``)."""
        if chart == self.chart:
            return
        self._waiting += 1
        if not force and self.chart is not None and self._waiting < self.every:
            return
        self._waiting = 0
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
        names = [curve.name for curve in chart.curves if curve.points]
        compact = self.compact
        named = f"{chart.title}: {', '.join(names)}"
        plt.title(named if compact and names and len(named) < self.size.width - 4 else chart.title)
        _, last = x_span([chart])
        top = nice_ticks(y_top(chart), 2 if compact else 3)
        plt.ylim(0, top[-1])
        plt.yticks(top, [tick_label(t) for t in top])
        plt.xlim(0, last)
        x_ticks = [t for t in nice_ticks(last, 3) if t <= last]
        plt.xticks(x_ticks, [tick_label(t) + ("s" if t == x_ticks[-1] else "") for t in x_ticks])
        for curve in chart.curves:
            if curve.points:
                xs = [t for t, _ in curve.points]
                ys = [min(v, top[-1]) for _, v in curve.points]
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
        """A row of ``count`` charts, each redrawn on every ``every``-th change."""
        super().__init__(name=name, id=id, classes=classes)
        self.count = count
        self.every = every

    def compose(self) -> ComposeResult:
        """The charts."""
        for _ in range(self.count):
            yield ChartPlot(every=self.every)

    def show(self, *charts: Chart, force: bool = False) -> None:
        """One chart per plot, in order."""
        for plot, chart in zip(self.query(ChartPlot), charts, strict=False):
            plot.show(chart, force=force)

    def clear(self) -> None:
        """Every plot empty."""
        for plot in self.query(ChartPlot):
            plot.clear()
