"""The benchmark screen as an expert expects it: charts, a readable log, where it runs, a form that remembers.

Each test drives the app built by the CLI's factory at 80x24 and 120x36:
the demo's scripted run (paced reading by reading, as a real one arrives)
for what the screen draws, and a real built-in run (sink and generator as
child processes on loopback) for the job log, whose lines are the engines'
own output.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from textual.color import Color
from textual.pilot import Pilot
from textual.widgets import Input, Log, Select, Static

from kumotui.bench.form import BenchForm, form_path, load_form
from kumotui.bench.records import list_runs
from kumotui.settings import Settings
from kumotui.ui.app import KumotuiApp, make_app
from kumotui.ui.modals.export import ExportScreen
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.runs import RunsScreen
from kumotui.ui.widgets.charts import ChartPlot, ChartRow
from tests.support.demo import DEMO_FACTS, DEMO_LIVE_TICK, demo_runs, demo_source, make_demo_host
from tests.support.pilot import started
from tests.support.shots import show_readings
from tests.support.waits import settle, wait_for

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])


def scripted_app(settings: Settings, *, paced: bool = True) -> KumotuiApp:
    """The app with the demo's scripted benchmark (paced: the test lets each reading through)."""
    return make_app(settings, host_facts=DEMO_FACTS, bench_source=demo_source(paced=paced))


async def open_bench(app: KumotuiApp, pilot: Pilot[Any]) -> BenchScreen:
    """Press b: the benchmark screen."""
    await pilot.press("b")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, BenchScreen)
    return screen


def status(screen: BenchScreen) -> str:
    """The status line as shown."""
    return str(screen.query_one("#bench-status", Static).render())


def plot_text(plot: ChartPlot) -> str:
    """What a chart draws, as plain text."""
    return str(plot.render())


@SIZES
async def test_live_charts_fill_the_space_with_axes_units_and_curves(demo_dir: Path, size: tuple[int, int]) -> None:
    app = scripted_app(make_demo_host(demo_dir))
    async with started(app, size) as pilot:
        screen = await open_bench(app, pilot)
        screen.query_one("#messages", Input).value = "60000"
        await pilot.press("s")  # the cursor is on the Backend list, where s is the screen's
        await show_readings(pilot, screen, DEMO_LIVE_TICK)
        await pilot.pause()  # not settle: the paced run's worker waits for the next release
        row = screen.query_one("#bench-charts", ChartRow)
        throughput, latency, cpu = row.query(ChartPlot)
        assert throughput.chart is not None and latency.chart is not None and cpu.chart is not None
        assert [c.name for c in throughput.chart.curves] == ["sent", "received"]
        assert [c.name for c in latency.chart.curves] == ["p50", "p99"]
        assert len(cpu.chart.curves) == DEMO_FACTS.cpus  # a line per core
        assert all(curve.points for chart in (throughput.chart, latency.chart, cpu.chart) for curve in chart.curves)
        drawn = plot_text(throughput)
        assert "msgs/s" in drawn and re.search(r"\d+k", drawn) and "s" in drawn.splitlines()[-1]  # ticks, unit
        assert "latency ms" in plot_text(latency) and "CPU %" in plot_text(cpu) and "100" in plot_text(cpu)
        # Whole on screen, below the panes and hints, above the footer, without scrolling.
        assert row.region.height >= (7 if size[1] < 30 else 14)
        assert row.region.bottom <= size[1] - 1 and row.region.right <= size[0]
        if size[1] >= 30:  # the legend names the curves; at 80x24 the title does
            assert "sent" in drawn and "received" in drawn
        else:
            assert "msgs/s: sent, received" in drawn


async def test_a_finished_run_charts_the_whole_run(demo_dir: Path) -> None:
    app = scripted_app(make_demo_host(demo_dir), paced=False)
    async with started(app, (120, 36)) as pilot:
        screen = await open_bench(app, pilot)
        screen.query_one("#messages", Input).value = "30000"
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.summary_shown)
        throughput = screen.query_one(ChartPlot)
        assert screen.figures is not None and throughput.chart == screen.figures.throughput_chart  # the last, drawn
        last = max(t for curve in throughput.chart.curves for t, _ in curve.points)
        assert last == pytest.approx(screen.figures.elapsed)


@SIZES
@pytest.mark.processes  # the built-in sink and generator, for real
async def test_the_log_shows_time_role_event_lines(demo_dir: Path, size: tuple[int, int]) -> None:
    app = make_app(make_demo_host(demo_dir), host_facts=DEMO_FACTS)
    async with started(app, size) as pilot:
        screen = await open_bench(app, pilot)
        for name, value in (("messages", "2000"), ("body_size", "200"), ("concurrency", "10")):
            screen.query_one(f"#{name}", Input).value = value
        screen.query_one("#concurrency", Input).focus()
        await pilot.press("enter")  # in a text field Enter starts
        await wait_for(pilot, lambda: screen.state in ("done", "failed"), 30)
        assert screen.state == "done", screen.error
        await pilot.press("l")
        await settle(pilot)
        log = screen.query_one(Log)
        lines = [str(line) for line in log.lines]
        assert lines and not any("{" in line for line in lines)
        pattern = re.compile(r"^\d+:\d\d (gen |sink) (ready|progress|summary) ")
        assert all(pattern.match(line) for line in lines), lines[:4]
        assert any(
            line.startswith(tuple(f"{m}:" for m in range(9))) and "summary" in line and "sent 2,000" in line
            for line in lines
        )
        assert max(len(line) for line in lines if "progress" in line) < 160


@SIZES
async def test_the_screen_says_where_it_runs(demo_dir: Path, size: tuple[int, int]) -> None:
    app = scripted_app(make_demo_host(demo_dir))
    async with started(app, size) as pilot:
        screen = await open_bench(app, pilot)
        assert f"on {DEMO_FACTS.hostname} (this machine)" in status(screen)
        await pilot.press("escape")
        await pilot.press("s")
        await show_readings(pilot, screen, 3)
        assert f"on {DEMO_FACTS.hostname} (this machine)" in status(screen) and "running" in status(screen)


@SIZES
async def test_the_form_remembers_across_screens_and_restarts(demo_dir: Path, size: tuple[int, int]) -> None:
    settings = make_demo_host(demo_dir)
    assert settings.state_dir is not None
    app = scripted_app(settings, paced=False)
    async with started(app, size) as pilot:
        screen = await open_bench(app, pilot)
        for name, value in (("messages", "4321"), ("label", "before tuning"), ("concurrency", "20")):
            screen.query_one(f"#{name}", Input).value = value
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.summary_shown)
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        assert app.screen.query_one("#messages", Input).value == "4321"
    assert load_form(demo_dir / settings.state_dir)[0] == BenchForm(
        messages="4321", label="before tuning", concurrency="20"
    )

    again = scripted_app(settings)  # the app started anew
    async with started(again, size) as pilot:
        screen = await open_bench(again, pilot)
        values = {name: screen.query_one(f"#{name}", Input).value for name in ("messages", "label", "concurrency")}
        assert values == {"messages": "4321", "label": "before tuning", "concurrency": "20"}
        assert screen.query_one("#backend", Select).value == "builtin"

    form_path(demo_dir / settings.state_dir).write_text('{"messages": ["x"]}')
    third = scripted_app(settings)
    async with started(third, size) as pilot:
        screen = await open_bench(third, pilot)
        assert screen.query_one("#messages", Input).value == BenchForm().messages
        # Said in a notice as the screen opens (gone after a few seconds, so read what it showed).
        assert "'messages' is not a short line of text" in screen.form_problem


@SIZES
async def test_errors_use_the_forms_labels(demo_dir: Path, size: tuple[int, int]) -> None:
    app = scripted_app(make_demo_host(demo_dir))
    async with started(app, size) as pilot:
        screen = await open_bench(app, pilot)
        for field, value, words in (
            ("messages", "lots", "Messages 'lots': expected a whole number"),
            ("body_size", "12XB", "Body size"),
            ("sink_workers", "0", "Sink workers"),
            ("through", "mta", "Through MTA"),
        ):
            screen.query_one(f"#{field}", Input).value = value
            screen.query_one(f"#{field}", Input).focus()
            await pilot.press("enter")
            await pilot.pause()
            shown = str(screen.query_one("#form-message", Static).render())
            assert words in shown and "--" not in shown.split(":")[0], shown
            assert screen.focused is screen.query_one(f"#{field}") and screen.state == "idle"
            screen.query_one(f"#{field}", Input).value = BenchForm().__getattribute__(field)


@SIZES
async def test_s_types_in_a_text_field_and_the_hints_say_so(demo_dir: Path, size: tuple[int, int]) -> None:
    app = scripted_app(make_demo_host(demo_dir))
    async with started(app, size) as pilot:
        screen = await open_bench(app, pilot)
        label = screen.query_one("#label", Input)
        label.focus()
        await pilot.pause()
        assert "Enter starts" in status(screen) and "Enter starts" in str(screen.query_one("#form-message").render())
        await pilot.press("s", "s")
        assert label.value == "ss" and screen.state == "idle"
        await pilot.press("escape")
        await pilot.pause()
        assert not screen.in_form() and "s starts" in status(screen)
        await pilot.press("s")
        await pilot.pause()
        assert screen.state in ("starting", "running")
        await show_readings(pilot, screen, 2)


def contrast(a: Color, b: Color) -> float:
    """WCAG contrast ratio of two colours."""

    def luminance(color: Color) -> float:
        def channel(c: int) -> float:
            s = c / 255
            return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

        r, g, bl = color.rgb
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(bl)

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
@SIZES
async def test_the_focused_field_stands_out_and_suggestions_are_readable(
    demo_dir: Path, size: tuple[int, int], theme: str
) -> None:
    app = scripted_app(make_demo_host(demo_dir))
    async with started(app, size) as pilot:
        app.theme = theme
        screen = await open_bench(app, pilot)
        messages, duration = screen.query_one("#messages", Input), screen.query_one("#duration", Input)
        messages.focus()
        await pilot.pause()
        focused, other = messages.background_colors[1], duration.background_colors[1]
        assert contrast(focused, other) >= 1.4, (focused, other)  # the cursor's field is a different block
        assert messages.rich_style.bold and not duration.rich_style.bold
        # Placeholders ("none", "auto", "max") are the suggested values: readable in both themes.
        placeholder = duration.get_component_rich_style("input--placeholder")
        assert placeholder.color is not None
        ratio = contrast(Color.from_rich_color(placeholder.color), other)
        assert ratio >= 3.0, ratio


@SIZES
async def test_runs_compare_overlays_curves_and_exports_html_with_svg(demo_dir: Path, size: tuple[int, int]) -> None:
    settings = make_demo_host(demo_dir)
    assert settings.state_dir is not None
    before, after = demo_runs(demo_dir / settings.state_dir)
    app = make_app(settings, host_facts=DEMO_FACTS)
    async with started(app, size) as pilot:
        await pilot.press("h")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await pilot.press("space", "down", "space")
        await settle(pilot)
        throughput, latency = screen.query_one("#runs-charts", ChartRow).query(ChartPlot)
        assert throughput.chart is not None and [c.name for c in throughput.chart.curves] == ["A sent", "B sent"]
        assert latency.chart is not None and [c.name for c in latency.chart.curves] == ["A p99", "B p99"]
        assert all(c.points for c in (*throughput.chart.curves, *latency.chart.curves))
        assert throughput.region.bottom <= size[1] - 1 and throughput.region.height >= 8
        await pilot.press("e")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        dialog.query_one(Select).value = "HTML with charts"
        await pilot.pause()
        path = dialog.query_one(Input)
        assert path.value.endswith(f"kumotui-report-{before.id}-vs-{after.id}.html")
        path.value = str(demo_dir / "report.html")
        path.focus()
        await pilot.press("enter")
        await settle(pilot)
        html = (demo_dir / "report.html").read_text()
        assert html.count("<svg") == 2 and "A sent" in html and "Window rate (msgs/s)" in html
    assert len(list_runs(demo_dir / settings.state_dir)) == 2
