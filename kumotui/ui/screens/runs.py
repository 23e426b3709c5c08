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

from kumotui.bench.published import versus_published
from kumotui.bench.records import RunRecord, list_runs
from kumotui.bench.report import compare_figures, parameter_differences, report_markdown
from kumotui.errors import KumotuiError
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.text.format import format_count, format_mmh, format_ms, format_rate, format_size
from kumotui.ui.commands import ScreenCommands
from kumotui.ui.modals.export import ExportScreen
from kumotui.ui.notices import describe_error

COLUMNS: tuple[tuple[str, str], ...] = (
    ("started", "Started"),
    ("backend", "Backend"),
    ("sent", "Sent"),
    ("failed", "Failed"),
    ("rate", "msgs/s"),
    ("mmh", "MMH"),
    ("p99", "p99 ms"),
    ("status", "Status"),
)
"""Column keys and headers, left to right."""
WIDE = 100
"""Columns from which the comparison shows every figure."""


def run_cells(run: RunRecord, mark: str = "") -> dict[str, str]:
    """One run as the table shows it; ``mark`` is ``A`` or ``B`` when picked for comparison."""
    gen = run.generator
    started = run.started.replace("T", " ")[5:16]
    return {
        "started": f"{mark or ' '} {started}",
        "backend": run.backend,
        "sent": format_count(gen.count) if gen else "–",
        "failed": format_count(gen.failed) if gen else "–",
        "rate": format_rate(gen.msgs_per_s) if gen else "–",
        "mmh": format_mmh(gen.mmh) if gen else "–",
        "p99": format_ms(gen.latency_p99_ms) if gen else "–",
        "status": "ok" if run.ok else "not ok",
    }


def render_run(run: RunRecord) -> Content:
    """One run's details: configuration, results of both sides, and KumoMTA's figures for scale."""
    config, gen, sink = run.config, run.generator, run.sink
    lines = [
        Content.from_markup(
            "[b]$id[/b]$label [$text-muted]on $host · $backend → $target[/]",
            id=run.id,
            label=f" ({run.label})" if run.label else "",
            host=run.host.hostname,
            backend=run.backend,
            target=config.target,
        )
    ]
    amount = []
    if config.messages is not None:
        amount.append(f"{config.messages:,} messages")
    if config.duration is not None:
        amount.append(f"{config.duration:g} s")
    size = format_size(config.body_size) if config.body_size is not None else "?"
    lines.append(
        Content(f"{' or '.join(amount) or 'default length'} · {size} bodies · {config.concurrency or '?'} connections")
    )
    if gen is not None:
        lines.append(
            Content.from_markup(
                "sent [b]$sent[/b] · failed $failed · [b]$rate[/b] msgs/s · [$text-accent b]$mmh MMH[/]"
                " · p50 $p50 · p99 $p99 ms",
                sent=format_count(gen.count),
                failed=format_count(gen.failed),
                rate=format_rate(gen.msgs_per_s),
                mmh=format_mmh(gen.mmh),
                p50=format_ms(gen.latency_p50_ms),
                p99=format_ms(gen.latency_p99_ms),
            )
        )
        if not gen.ok and gen.reason:
            lines.append(Content.from_markup("[$text-warning]not ok: $reason[/]", reason=gen.reason))
    if sink is not None:
        lines.append(Content(f"sink received {sink.count:,} · {format_rate(sink.msgs_per_s)} msgs/s while busy"))
    if gen is not None:
        lines.append(
            Content.from_markup(
                "[$text-muted]KumoMTA published: $versus[/]", versus=versus_published(gen.mmh, run.host.cpus)
            )
        )
    lines.append(Content.from_markup("[$text-muted]space picks it for a comparison · e exports its report[/]"))
    return Content("\n").join(lines)


COMPACT_SKIP = frozenset({"Generator MB/s", "Latency p90 (ms)", "Latency max (ms)", "Sink MMH"})
"""Figures left out of a narrow comparison, so the parameters that differed fit 80x24 (the report has them all)."""


def render_comparison(before: RunRecord, after: RunRecord, *, compact: bool = False) -> Content:
    """Two runs side by side: the result figures with their change, then the parameters that differed."""
    rows = [row for row in compare_figures(before, after) if not (compact and row[0] in COMPACT_SKIP)]
    label_w = max(len("Result"), *(len(label) for label, _, _, _ in rows))
    a_w = max(len("A"), *(len(a) for _, a, _, _ in rows))
    b_w = max(len("B"), *(len(b) for _, _, b, _ in rows))
    header = f"{'Result':<{label_w}}  {'A':>{a_w}}  {'B':>{b_w}}  Change"
    lines = [
        Content.from_markup("[b]A[/b] $a", a=run_title(before)),
        Content.from_markup("[b]B[/b] $b", b=run_title(after)),
        Content(header).stylize("bold"),
    ]
    for label, a, b, change in rows:
        style = "$text-success" if "better" in change else "$text-error" if "worse" in change else "$text-muted"
        lines.append(
            Content.from_markup(
                f"$label  $a  $b  [{style}]$change[/]",
                label=label.ljust(label_w),
                a=a.rjust(a_w),
                b=b.rjust(b_w),
                change=change,
            )
        )
    if not compact:
        lines.append(Content(""))
    lines.append(Content.from_markup("[b]Kernel parameters that differed[/b]"))
    differences = parameter_differences(before, after)
    if not differences:
        lines.append(Content.from_markup("[$text-muted]none: both started with the same recorded values[/]"))
    key_w = max((len(key) for key, _, _ in differences), default=0)
    for key, a_value, b_value in differences:
        lines.append(
            Content.from_markup(
                "$key  $a [$text-muted]→[/] [$text-accent b]$b[/]",
                key=key.ljust(key_w),
                a=a_value if a_value is not None else "(not recorded)",
                b=b_value if b_value is not None else "(not recorded)",
            )
        )
    return Content("\n").join(lines)


def run_title(run: RunRecord) -> str:
    """``20260314-091500-0000 · 03-14 09:15 · builtin · before tuning``: which run a column is."""
    parts = [run.id, run.started.replace("T", " ")[5:16], run.backend]
    if run.label:
        parts.append(run.label)
    return " · ".join(parts)


def report_name(runs: list[RunRecord]) -> str:
    """The default file name of a report: ``kumotui-report-<id>[-vs-<id>].md``."""
    return "kumotui-report-" + "-vs-".join(run.id for run in runs) + ".md"


class RunsScreen(Screen[None]):
    """Every saved run, newest first; pick two to compare, export either view as Markdown."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pick", "Pick", id="runs-pick", tooltip="Pick the highlighted run for a comparison (two)"),
        Binding("e", "export", "Export", id="runs-export", tooltip="Write the Markdown report of what is shown"),
        Binding("x", "clear_picks", "Clear", id="runs-clear", tooltip="Drop both picks; show the highlighted run"),
        Binding("R", "reload", "Reload", id="runs-reload", show=False, tooltip="Read the saved runs again"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave kumotui"),
    ]

    class RunsListed(Message):
        """The saved runs were read."""

        def __init__(self, runs: list[RunRecord]) -> None:
            super().__init__()
            self.runs = runs

    class ReportWritten(Message):
        """A report file was written."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

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
            yield Static(id="runs-text")
        yield Footer()

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

    @work(thread=True, group="export", exclusive=True, exit_on_error=False)
    def write_report(self, path: Path, text: str) -> None:
        """Write the report file."""
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise KumotuiError(f"cannot write {path}: {error.strerror}") from None
        self.post_message(self.ReportWritten(path))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where a failed read or write becomes a clear notice."""
        if event.state is WorkerState.ERROR:
            title = "Writing the report failed" if event.worker.group == "export" else "Reading the runs failed"
            self.notify(describe_error(event.worker.error), title=title, severity="error", timeout=12, markup=False)

    # -- results ---------------------------------------------------------

    def on_runs_screen_runs_listed(self, message: RunsListed) -> None:
        """Fill the table, newest first, keeping picks and the highlighted run."""
        self.runs = {run.id: run for run in reversed(message.runs)}
        self.picks = [run_id for run_id in self.picks if run_id in self.runs]
        self.refresh_rows()

    def on_runs_screen_report_written(self, message: ReportWritten) -> None:
        """Say where the report went."""
        self.notify(f"Wrote {message.path}", title="Report exported", markup=False)

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
        compared = self.compared
        if compared is not None:
            text.update(render_comparison(*compared, compact=self.size.width < WIDE))
        elif (run := self.highlighted) is not None:
            text.update(render_run(run))
        else:
            text.update(Content.from_markup("[$text-muted]Nothing to show.[/]"))

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
            text = report_markdown(*compared)
            what = f"{compared[0].id} vs {compared[1].id}"
        elif (run := self.highlighted) is not None:
            runs, text, what = [run], report_markdown(run), run.id
        else:
            return

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.write_report(path, text)

        self.app.push_screen(ExportScreen(Path.cwd() / report_name(runs), what), chosen)

    def action_reload(self) -> None:
        """Read the saved runs again."""
        self.reload()

    def action_quit(self) -> None:
        """Leave the app."""
        self.app.exit()
