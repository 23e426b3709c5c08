"""The runs screen: saved benchmarks, two compared side by side, a report exported.

The list, the comparison and the report are the core's
(:func:`~kumotui.runs.list_runs`, :func:`~kumotui.runs.compare_figures`,
:func:`~kumotui.runs.parameter_differences`,
:func:`~kumotui.runs.report_markdown`), so the screen agrees with
``kumotui runs`` and ``kumotui report`` to the digit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from kumotui.bench.charts import overlay_charts, run_charts
from kumotui.bench.records import RunRecord, list_runs
from kumotui.bench.report import export_report, report_html, report_markdown, reports_dir
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.ui.commands import ScreenCommands
from kumotui.ui.modals.export import ExportChoice, ExportScreen
from kumotui.ui.notices import notify_error
from kumotui.ui.render import render_comparison, render_run, run_cells
from kumotui.ui.widgets.charts import ChartRow

COLUMNS: tuple[tuple[str, str], ...] = (
    ("started", "Started"),
    ("status", "Status"),
    ("label", "Label"),
    ("backend", "Backend"),
    ("body", "Body"),
    ("conc", "Conc"),
    ("wall", "Wall"),
    ("sent", "Sent"),
    ("failed", "Failed"),
    ("rate", "msgs/s"),
    ("mmh", "MMH"),
    ("p99", "p99 ms"),
)
"""Column keys and headers, left to right: what a person scans for first (when, how it ended, their
note), then the setup, then the results (msgs/s and MMH over the steady-state window)."""
WIDE = 100
SHORT_ROWS = 30
"""Terminal rows below which the charts are compact."""
"""Columns from which the comparison shows every figure."""


def report_name(runs: list[RunRecord], suffix: str = ".md") -> str:
    """The default file name of a report: ``kumotui-report-<id>[-vs-<id>].md`` (or ``.html``)."""
    return "kumotui-report-" + "-vs-".join(run.id for run in runs) + suffix


REPORT_FORMATS = {"Markdown": ".md", "HTML with charts": ".html"}
"""What the export dialog offers, and each one's file name suffix."""


class RunsScreen(Screen[None]):
    """Every saved run, newest first; pick two to compare, export either view as Markdown."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pick", "Pick", id="runs-pick", tooltip="Pick the highlighted run for a comparison (two)"),
        Binding("e", "export", "Export", id="runs-export", tooltip="Write the Markdown report of what is shown"),
        Binding("x", "clear_picks", "Clear", id="runs-clear", tooltip="Drop both picks; show the highlighted run"),
        Binding("R", "reload", "Reload", id="runs-reload", show=False, tooltip="Read the saved runs again"),
        Binding("q", "app.request_quit", "Quit", id="quit", tooltip="Leave kumotui"),
    ]

    class RunsListed(Message):
        """The saved runs were read."""

        def __init__(self, runs: list[RunRecord]) -> None:
            super().__init__()
            self.runs = runs

    def __init__(
        self, settings: Settings, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        """Create the screen for the runs under ``settings``' state dir."""
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self.runs: dict[str, RunRecord] = {}
        self.picks: list[str] = []
        """Run ids picked for comparison, in the order picked (at most two)."""
        self._shown: dict[str, dict[str, str]] = {}

    def compose(self) -> ComposeResult:
        """Summary line, the table, the details or comparison, footer."""
        yield Static("Reading saved runs…", id="runs-summary")
        table: DataTable[Text] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=False)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        with VerticalScroll(id="runs-detail"):
            yield ChartRow(2, id="runs-charts")
            yield Static(id="runs-text")
        yield Footer()

    def on_resize(self) -> None:
        """Short terminals get compact charts."""
        self.set_class(self.size.height < SHORT_ROWS, "-short")

    def on_mount(self) -> None:
        """Read the runs."""
        self.query_one(DataTable).focus()
        self.reload()

    def on_screen_resume(self) -> None:
        """A run may have finished while another screen was shown: read again."""
        self.reload()

    @property
    def state_dir(self) -> Path:
        """Where the runs are saved (this machine)."""
        return self.settings.state_dir or default_state_dir()

    # -- workers ---------------------------------------------------------

    def reload(self) -> None:
        """Read the saved runs in a worker."""
        self.list_saved()

    @work(thread=True, group="runs", exclusive=True, exit_on_error=False)
    def list_saved(self) -> None:
        """Every saved record (file reads, off the event loop)."""
        self.post_message(self.RunsListed(list_runs(self.state_dir)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where a failed read or write becomes a clear notice."""
        if event.state is WorkerState.ERROR:
            notify_error(self, event.worker.error, "Reading the runs failed")

    # -- results ---------------------------------------------------------

    def on_runs_screen_runs_listed(self, message: RunsListed) -> None:
        """Fill the table, newest first, keeping picks and the highlighted run."""
        self.runs = {run.id: run for run in reversed(message.runs)}
        self.picks = [run_id for run_id in self.picks if run_id in self.runs]
        self.refresh_rows()

    def refresh_rows(self) -> None:
        """Keyed rows updated in place: new runs added, changed cells rewritten, deleted runs removed."""
        table: DataTable[Text] = self.query_one(DataTable)
        with self.app.batch_update():
            for run_id in [key for key in self._shown if key not in self.runs]:
                table.remove_row(run_id)
                del self._shown[run_id]
            added = False
            for run_id, run in self.runs.items():
                cells = run_cells(run, self.mark(run_id))
                old = self._shown.get(run_id)
                if old is None:
                    table.add_row(*(Text(cells[k], no_wrap=True) for k, _ in COLUMNS), key=run_id)
                    added = True
                else:
                    for column, value in cells.items():
                        if old[column] != value:
                            table.update_cell(run_id, column, Text(value, no_wrap=True))
                self._shown[run_id] = cells
            order = list(self.runs)
            if added and [str(row.key.value) for row in table.ordered_rows] != order:
                self._rebuild(order)  # a new run belongs on top; rows only append
        self.update_summary()
        self.update_detail()
        self.refresh_bindings()

    def _rebuild(self, order: list[str]) -> None:
        """Put the rows in ``order`` (newest first) after new runs arrived."""
        table: DataTable[Text] = self.query_one(DataTable)
        highlighted = self.highlighted
        table.clear()
        for run_id in order:
            cells = self._shown[run_id]
            table.add_row(*(Text(cells[k], no_wrap=True) for k, _ in COLUMNS), key=run_id)
        if highlighted is not None and highlighted.id in self.runs:
            table.move_cursor(row=table.get_row_index(highlighted.id))

    def mark(self, run_id: str) -> str:
        """``A`` or ``B`` for a picked run (older is A), else empty."""
        if run_id not in self.picks:
            return ""
        ordered = sorted(self.picks)
        return "AB"[ordered.index(run_id)]

    @property
    def highlighted(self) -> RunRecord | None:
        """The run under the cursor."""
        table: DataTable[Text] = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.runs.get(str(key))

    @property
    def compared(self) -> tuple[RunRecord, RunRecord] | None:
        """The two picked runs, older first, when two are picked."""
        if len(self.picks) != 2:
            return None
        first, second = sorted(self.picks)
        return self.runs[first], self.runs[second]

    def update_summary(self) -> None:
        """The line above the table."""
        count = len(self.runs)
        if not count:
            text = f"No runs saved in {self.state_dir} yet · b starts a benchmark"
        else:
            text = f"{count} run{'s' if count != 1 else ''} saved · space picks two to compare · e exports"
            if len(self.picks) == 1:
                text += " · pick one more"
        self.query_one("#runs-summary", Static).update(text)

    def update_detail(self) -> None:
        """The comparison when two runs are picked, else the highlighted run."""
        text = self.query_one("#runs-text", Static)
        charts = self.query_one("#runs-charts", ChartRow)
        compared = self.compared
        if compared is not None:
            text.update(render_comparison(*compared, compact=self.size.width < WIDE))
            charts.show(*overlay_charts(compared[0].series, compared[1].series))
        elif (run := self.highlighted) is not None:
            text.update(render_run(run))
            charts.show(*run_charts(run.series, delivered_name="delivered" if run.config.through else "received"))
        else:
            text.update(Content.from_markup("[$text-muted]Nothing to show.[/]"))
            charts.clear()
        charts.display = compared is not None or self.highlighted is not None

    @on(DataTable.RowHighlighted, "#runs-table")
    def _row_highlighted(self) -> None:
        if self.compared is None:
            self.update_detail()
        self.refresh_bindings()

    # -- actions ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer only what applies now."""
        if action in ("pick", "export"):
            return bool(self.runs)
        if action == "clear_picks":
            return bool(self.picks)
        return True

    def action_pick(self) -> None:
        """Pick (or unpick) the highlighted run; a third pick replaces the earliest."""
        run = self.highlighted
        if run is None:
            return
        if run.id in self.picks:
            self.picks.remove(run.id)
        else:
            self.picks.append(run.id)
            if len(self.picks) > 2:
                self.picks.pop(0)
        self.refresh_rows()

    def action_clear_picks(self) -> None:
        """Drop both picks."""
        self.picks.clear()
        self.refresh_rows()

    def action_export(self) -> None:
        """Ask for a file, then write the report of the comparison (or the highlighted run)."""
        compared = self.compared
        if compared is not None:
            runs = list(compared)
            what = f"{compared[0].id} vs {compared[1].id}"
        elif (run := self.highlighted) is not None:
            runs, what = [run], run.id
        else:
            return

        def written(choice: ExportChoice | None) -> None:
            if choice is not None:
                self.notify(f"Wrote {choice.path}", title="Report exported", markup=False)

        def write(choice: ExportChoice) -> None:
            html = choice.format == "HTML with charts"
            export_report(choice.path, report_html(*runs) if html else report_markdown(*runs))

        names = {name: report_name(runs, suffix) for name, suffix in REPORT_FORMATS.items()}
        default = reports_dir(self.state_dir).absolute() / names["Markdown"]
        dialog = ExportScreen(default, what, write, formats=names, written="the report")
        self.app.push_screen(dialog, written)

    def copy_text(self) -> tuple[str, str] | None:
        """What y copies here: the highlighted run's id."""
        run = self.highlighted
        return ("run id", run.id) if run is not None else None

    def action_reload(self) -> None:
        """Read the saved runs again."""
        self.reload()
