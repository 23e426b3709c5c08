"""The benchmark screen: a compact form, live panes while a run goes, and its summary.

The run itself is the core's :class:`~kumotui.benchmark.Benchmark`, driven by
:func:`~kumotui.benchmark.run_and_record` in a thread worker exactly as
``kumotui bench`` drives it, so the screen and the CLI save the same records.
Each poll of the run (2 Hz) becomes one :class:`BenchScreen.BenchSampled`
message carrying figures that :class:`~kumotui.benchlive.LiveWatch` derived in
that thread (host readings and hint rules included); a newer one replaces a
queued older one, so a busy event loop never falls behind. Job output is
flushed to a bounded ``Log`` in the same batches.

Every job the screen starts is stopped by PID when the run is stopped, when
the screen goes away (quit, a crash) and at interpreter exit.
"""

from __future__ import annotations

import enum
import platform
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import Checkbox, Footer, Input, Label, Log, OptionList, Select, Static
from textual.worker import Worker, WorkerState

from kumotui.backends import preferred
from kumotui.backends.samples import Sample
from kumotui.bench.form import SINK_CHOICES, BenchForm, field_for_error, for_the_form, load_form, save_form
from kumotui.bench.live import NO_CPU, NO_LATENCY, NO_THROUGHPUT, BenchSource, LiveFigures, LiveWatch, summary_lines
from kumotui.bench.options import BenchOptions
from kumotui.bench.placement import LOCAL
from kumotui.bench.run import Benchmark, BenchOutcome, run_and_record
from kumotui.bench.session import open_live_run
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts
from kumotui.hosts.remembered import load_config
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.text.format import format_eta
from kumotui.tuning.redirect import TRADE_OFF_SHORT, Redirect
from kumotui.ui.commands import ScreenCommands
from kumotui.ui.modals.redirect import RedirectConfirmScreen
from kumotui.ui.notices import describe_error, notify_error
from kumotui.ui.widgets.bench_panes import (
    GeneratorPane,
    HintList,
    HostPanes,
    LatencyPane,
    MtaPane,
    Pane,
    Readout,
    SinkPane,
)
from kumotui.ui.widgets.charts import REDRAW_EVERY, ChartRow

if TYPE_CHECKING:
    from kumotui.bench.hints import Hint

UNMOUNT_WAIT = 15.0
"""Seconds the screen waits, when the app closes, for a stopped run to be saved."""
LOG_LINES = 500
"""Job output lines the log pane keeps: a bounded ``Log`` (the built-in engines
print about four lines a second), so memory stays flat."""


class BenchState(enum.StrEnum):
    """Where the benchmark screen's run stands."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    DONE = "done"
    """Finished, or stopped early with partial counts (the outcome says which)."""
    FAILED = "failed"


STATE_WORDS = {
    BenchState.IDLE: ("○", "$text-muted", "ready"),
    BenchState.STARTING: ("◌", "$text-warning", "starting"),
    BenchState.RUNNING: ("●", "$text-success", "running"),
    BenchState.STOPPING: ("◌", "$text-warning", "stopping"),
    BenchState.DONE: ("✔", "$text-success", "finished"),
    BenchState.FAILED: ("✖", "$text-error", "failed"),
}
"""How each state of the screen reads in the status line."""

SHORT_ROWS = 30
"""Terminal rows below which the charts and hints are compact."""
FORM_HELP = "Enter starts · Tab moves · Esc leaves the form, then s starts"
"""The form's help line. In a text field ``s`` types an s, so there Enter starts a run;
outside the fields (after Esc) ``s`` does."""
REDIRECT_LABEL = "Redirect the MTA's outbound port 25 to the sink (shows the rule first)"
"""The checkbox shown when the run goes through an MTA: ``bench --redirect-port25``."""
RESPONSES_HINT = "none: accept all"
"""The Responses field's placeholder; ``providers`` or a responses.toml path make the built-in sink push back."""


class HostSuggester(Suggester):
    """Completes the last host typed in a hosts field from the host switcher's remembered hosts."""

    def __init__(self) -> None:
        """Case-sensitive (host specs are), not cached: the remembered list may change meanwhile."""
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        """``gen-a, mx`` → ``gen-a, mx2.example.net`` when that host is remembered."""
        typed = value.rsplit(",", 1)[-1].lstrip()
        if not typed:
            return None
        try:
            remembered = load_config().hosts
        except KumotuiError:
            return None
        found = next((host for host in (LOCAL, *remembered) if host.startswith(typed) and host != typed), None)
        if found is None:
            return None
        return value[: len(value) - len(typed)] + found


class BenchScreen(Screen[None]):
    """Start a benchmark, watch it live, and see its result beside KumoMTA's published figures."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start", id="bench-start", tooltip="Start a run with the form's settings"),
        Binding("s", "stop", "Stop", id="bench-stop", tooltip="Stop the run (generator, then sink); it is saved"),
        Binding(
            "ctrl+c", "stop", "Stop", id="bench-interrupt", show=False, tooltip="Stop the run, like Ctrl+C in the CLI"
        ),
        Binding("e", "edit_form", "Edit", id="bench-edit", tooltip="Change the run's settings"),
        Binding("l", "toggle_log", "Log", id="bench-log", tooltip="Show or hide the jobs' raw output"),
        Binding(
            "n",
            "next_host",
            "Next host",
            id="bench-next-host",
            tooltip="Show the next host's pane (one at a time here)",
        ),
        Binding("escape", "leave_form", "Leave form", id="bench-leave", show=False, tooltip="Back to the panes"),
        Binding("q", "app.request_quit", "Quit", id="quit", tooltip="Leave kumotui (asks first while a run goes)"),
    ]

    class BackendsFound(Message):
        """The backends installed here are known."""

        def __init__(self, backends: Sequence[str]) -> None:
            super().__init__()
            self.backends = backends

    class BenchSampled(Message):
        """One poll of the running benchmark, with everything derived from it."""

        def __init__(self, figures: LiveFigures) -> None:
            super().__init__()
            self.figures = figures

        def can_replace(self, message: Message) -> bool:
            """A newer reading makes a queued older one pointless (job logs wait in the watch)."""
            return isinstance(message, BenchScreen.BenchSampled)

    class HostsPlaced(Message):
        """Every host of the run starting now answered: one pane each."""

        def __init__(self, hosts: Sequence[str]) -> None:
            super().__init__()
            self.hosts = hosts

    class BenchFinished(Message):
        """The run ended, was summarised and saved."""

        def __init__(self, outcome: BenchOutcome) -> None:
            super().__init__()
            self.outcome = outcome

    state: reactive[BenchState] = reactive(BenchState.IDLE)
    show_log: reactive[bool] = reactive(False)
    """Whether the job log pane is shown."""
    summary_shown: reactive[bool] = reactive(False)
    """Whether the last run's summary card is shown and laid out (tests and screenshots wait on it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        host_facts: HostFacts | None = None,
        source: BenchSource | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create the screen.

        Args:
            settings: profile, sysctl root and state dir (runs are saved there).
            host_facts: fixed facts for the run record (screenshots); read from the host when None.
            source: where runs and readings come from; the real core when None.
            name: Textual's widget name.
            id: Textual's widget id.
            classes: Textual's CSS classes.
        """
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self.fixed_facts = host_facts
        self.source = source or BenchSource()
        self.bench: Benchmark | None = None
        """The run in progress (set by the worker), for stopping it."""
        self.live: LiveWatch | None = None
        """The current run's figures in the making (its job log lines wait there)."""
        self.figures: LiveFigures | None = None
        """The latest figures shown."""
        self.outcome: BenchOutcome | None = None
        """The last finished run."""
        self.options: BenchOptions | None = None
        self.form_text = BenchForm()
        self.error = ""
        self._stop_asked = threading.Event()
        self._idle = threading.Event()
        """Set while no run's worker is going."""
        self._idle.set()
        self.state_dir = (settings.state_dir or default_state_dir()).absolute()
        """Where runs are saved, fixed now: a relative path must not follow a later chdir."""
        self.where = host_facts.hostname if host_facts is not None else platform.node()
        """This machine's name, for the status line."""
        self.hosts: list[str] = [LOCAL]
        """The run's hosts (``local`` for this machine), generators first, once they answered."""
        self.remembered, self.form_problem = load_form(self.state_dir)
        """The last form that started a run (else the defaults), and why a saved one was not used."""

    # -- layout ----------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Status line, form (with the last values that started a run), live panes, charts, log, footer."""
        defaults = self.remembered
        yield Readout(id="bench-status")
        with Vertical(id="bench-form"):
            with Horizontal(classes="form-row"):
                yield Label("Backend", classes="form-label -col1")
                yield Select[str](
                    [("builtin", "builtin")], value="builtin", allow_blank=False, id="backend", compact=True
                )
                yield Label("Sink", classes="form-label -col2")
                yield Select[str](
                    [(label, key) for key, label in SINK_CHOICES.items()],
                    value=defaults.sink,
                    allow_blank=False,
                    id="sink",
                    compact=True,
                )
                yield Label("Target", classes="form-label -col3")
                yield Input(
                    defaults.target,
                    placeholder="HOST:PORT",
                    id="target",
                    compact=True,
                    disabled=defaults.sink != "target",
                )
            with Horizontal(classes="form-row"):
                yield Label("Generators on", classes="form-label -col1")
                yield Input(
                    defaults.generator_hosts,
                    placeholder="local, …",
                    id="generator_hosts",
                    compact=True,
                    suggester=HostSuggester(),
                )
                yield Label("MTA on", classes="form-label -col2")
                yield Input(
                    defaults.mta_host,
                    placeholder="auto",
                    id="mta_host",
                    compact=True,
                    suggester=HostSuggester(),
                )
                yield Label("Sink on", classes="form-label -col3")
                yield Input(
                    defaults.sink_host,
                    placeholder="local",
                    id="sink_host",
                    compact=True,
                    suggester=HostSuggester(),
                )
            with Horizontal(classes="form-row"):
                yield Label("Messages", classes="form-label -col1")
                yield Input(defaults.messages, placeholder="none", id="messages", compact=True)
                yield Label("Duration s", classes="form-label -col2")
                yield Input(defaults.duration, placeholder="none", id="duration", compact=True)
                yield Label("Rate/s", classes="form-label -col3")
                yield Input(defaults.rate, placeholder="max", id="rate", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Concurrency", classes="form-label -col1")
                yield Input(defaults.concurrency, id="concurrency", compact=True)
                yield Label("Body size", classes="form-label -col2")
                yield Input(defaults.body_size, id="body_size", compact=True)
                yield Label("Workers", classes="form-label -col3")
                yield Input(defaults.workers, id="workers", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Through MTA", classes="form-label -col1")
                yield Input(defaults.through, placeholder="none", id="through", compact=True)
                yield Label("Responses", classes="form-label -col2")
                yield Input(defaults.responses, placeholder=RESPONSES_HINT, id="responses", compact=True)
                yield Label("Sink at", classes="form-label -col3")
                yield Input(defaults.sink_listen, placeholder="auto", id="sink_listen", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Sink workers", classes="form-label -col1")
                yield Input(defaults.sink_workers, id="sink_workers", compact=True)
                yield Label("Label", classes="form-label -col2")
                yield Input(defaults.label, placeholder="e.g. before tuning", id="label", compact=True)
                yield Label("Metrics", classes="form-label -col3")
                yield Input(defaults.mta_metrics, placeholder="auto", id="mta_metrics", compact=True)
            with Horizontal(classes="form-row", id="redirect-row"):
                yield Checkbox(REDIRECT_LABEL, id="redirect_port25", compact=True, tooltip=TRADE_OFF_SHORT)
            yield Static(Content.from_markup("[$text-muted]$help[/]", help=FORM_HELP), id="form-message")
        with VerticalScroll(id="bench-body"):
            yield Static(id="bench-summary")
            yield GeneratorPane(id="gen-pane")
            yield SinkPane(id="sink-pane")
            yield MtaPane(id="mta-pane")
            yield LatencyPane(id="latency-pane")
            yield HostPanes(id="host-panes")
            yield HintList(id="hints")
            yield ChartRow(3, every=REDRAW_EVERY, id="bench-charts")
        yield Log(max_lines=LOG_LINES, id="bench-log")
        yield Footer()

    def on_mount(self) -> None:
        """Find the installed backends; the form's first field takes the keys."""
        self.show_redirect_choice()
        self.update_status()
        self.find_backends()
        self.query_one(ChartRow).show(NO_THROUGHPUT, NO_LATENCY, NO_CPU, force=True)
        if self.form_problem:
            self.notify(self.form_problem, title="Remembered form not used", severity="warning", markup=False)

    def on_resize(self) -> None:
        """Short terminals get the compact layout (see the stylesheet's ``-short``): one host's pane at a time."""
        self.set_class(self.size.height < SHORT_ROWS, "-short")
        self.refresh_bindings()

    def on_unmount(self) -> None:
        """Stop every job of a run still going (quit, crash): nothing outlives the app.

        Then wait (briefly) for the worker to summarise and save the partial
        run, so it is in the history and nothing writes after the app is gone.
        """
        self.stop_jobs()
        self._idle.wait(UNMOUNT_WAIT)

    def stop_jobs(self) -> None:
        """Ask the run to stop and stop its jobs by PID now (blocks until they are gone)."""
        self._stop_asked.set()
        bench = self.bench
        if bench is not None:
            bench.request_stop()
            bench.stop()

    # -- workers ---------------------------------------------------------

    @work(thread=True, group="backends", exclusive=True, exit_on_error=False)
    def find_backends(self) -> None:
        """Look for kumod/traffic-gen and smtp-sink/smtp-source (file lookups, off the event loop)."""
        self.post_message(self.BackendsFound(self.source.backends()))

    @work(thread=True, group="bench", exclusive=True, exit_on_error=False)
    def run_benchmark(self, form: BenchForm, options: BenchOptions) -> None:
        """Run one benchmark to its end (or a stop), posting a reading per poll; save its record.

        Everything here blocks: reading the kernel's values for the record,
        starting the sink and waiting for it, the run, stopping the jobs.
        """
        try:
            self._run_benchmark(form, options)
        finally:
            self._idle.set()

    def _run_benchmark(self, form: BenchForm, options: BenchOptions) -> None:
        try:
            save_form(self.state_dir, form)
        except (KumotuiError, OSError) as error:
            message = f"The form's values are not remembered: {describe_error(error)}"
            self.app.call_from_thread(self.notify, message, severity="warning", markup=False)
        run = open_live_run(
            self.settings, form, options, self.source, confirm_redirect=self.confirm_redirect
        )  # every host reached and checked first
        try:
            self._drive(run.bench, run.watch, self.fixed_facts or run.facts, list(run.placed.hosts))
        finally:
            run.close()

    def _drive(self, bench: Benchmark, watch: LiveWatch, facts: HostFacts, hosts: list[str]) -> None:
        """Run ``bench`` to its end (or a stop), one reading per poll; nothing starts once a stop was asked."""
        self.bench, self.live = bench, watch
        if self._stop_asked.is_set():  # stopped (or the app quit) while the hosts were reached: start nothing
            raise KumotuiError("stopped before the run started; nothing was started on any host")
        self.post_message(self.HostsPlaced(hosts))

        def sampled(fresh: list[Sample]) -> None:
            self.post_message(self.BenchSampled(watch.tick(bench, fresh)))

        outcome = run_and_record(bench, facts, self.state_dir, sampled)
        # The run's last readings (taken after the jobs stopped, with their exact
        # totals) came after the last poll the panes saw: show them too.
        self.post_message(self.BenchSampled(watch.tick(bench, bench.series[-4:])))
        self.post_message(self.BenchFinished(outcome))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where a failed run or lookup becomes a clear notice."""
        worker = event.worker
        if event.state is not WorkerState.ERROR:
            return
        message = describe_error(worker.error)
        if worker.group == "bench":
            self.error = message
            self.state = BenchState.FAILED
            self.show_form_error(message)
            notify_error(self, message, "The benchmark failed")
        else:
            notify_error(self, message, "Looking for backends failed")

    # -- results ---------------------------------------------------------

    def on_bench_screen_backends_found(self, message: BackendsFound) -> None:
        """Offer only the backends installed here, the one ``auto`` would pick first."""
        select = self.query_one("#backend", Select)
        select.set_options([(name, name) for name in message.backends])
        remembered = self.remembered.backend
        select.value = remembered if remembered in message.backends else preferred(message.backends)

    def on_bench_screen_bench_sampled(self, message: BenchSampled) -> None:
        """Show one reading: panes, hints, and the job output since the last one."""
        figures = message.figures
        self.figures = figures
        if self.state == BenchState.STARTING:
            self.state = BenchState.RUNNING
        with self.app.batch_update():
            self.query_one(GeneratorPane).show(figures)
            self.query_one(SinkPane).show(figures)
            self.query_one(MtaPane).show(figures)
            self.query_one(LatencyPane).show(figures)
            self.query_one(HostPanes).show(figures)
            self.query_one(ChartRow).show(figures.throughput_chart, figures.latency_chart, figures.cpu_chart)
            if figures.hints:
                hints = self.query_one(HintList)
                hints.show_hints(figures.hints, figures.active_hints)
                if self.focused is None:
                    # Enter on a hint jumps to its parameter. Focus only: scrolling the
                    # panes to the list raced with the summary card's layout at the end.
                    hints.focus(scroll_visible=False)
            self.update_status()
            self.flush_log()

    async def on_bench_screen_hosts_placed(self, message: HostsPlaced) -> None:
        """One pane per host of the run (mounted before the run's first reading is shown)."""
        self.hosts = list(message.hosts)
        await self.query_one(HostPanes).place(message.hosts)
        self.refresh_bindings()
        self.update_status()

    def on_bench_screen_bench_finished(self, message: BenchFinished) -> None:
        """Show the summary card and the whole run's charts; the run is in the history now."""
        self.outcome = message.outcome
        if self.figures is not None:
            figures = self.figures
            self.query_one(ChartRow).show(
                figures.throughput_chart, figures.latency_chart, figures.cpu_chart, force=True
            )
        self.flush_log()
        self.state = BenchState.DONE
        lines = summary_lines(message.outcome)
        first, *rest = lines
        card = Content.from_markup("[b]$first[/b]", first=first)
        for line in rest:
            card += Content("\n") + Content(line)
        summary = self.query_one("#bench-summary", Static)
        summary.update(card)
        summary.set_class(not (message.outcome.generator and message.outcome.generator.ok), "-not-ok")
        self.call_after_refresh(self._summary_laid_out)

    def _summary_laid_out(self) -> None:
        """The card has its place below the form now: show it from the top."""
        self.query_one("#bench-body", VerticalScroll).scroll_home(animate=False, immediate=True)
        self.summary_shown = True

    def flush_log(self) -> None:
        """Write the job output collected since the last flush, in one batch, if the log is shown.

        While it is hidden (the default) the lines wait in the watch's bounded
        buffer instead: a hidden ``Log`` would still measure every line, and
        Rich's cell-width cache would keep each one alive for many minutes.
        """
        if self.live is None or not self.show_log:
            return
        lines = self.live.take_log()
        if lines:
            self.query_one(Log).write_lines(lines)

    # -- rendering -------------------------------------------------------

    def update_status(self) -> None:
        """The top line: state, elapsed time, and what is running where."""
        stopped = self.state == BenchState.DONE and self.outcome is not None and self.outcome.interrupted
        icon, style, word = ("■", "$text-warning", "stopped early") if stopped else STATE_WORDS[self.state]
        figures = self.figures
        through = self.options.through if self.options is not None else None
        if through and self.state == BenchState.STARTING:
            word = f"probing the route through {through}"  # the run's first step: probes must reach the sink
        elif figures is not None and figures.phase == "draining" and self.state == BenchState.RUNNING:
            word = "draining the MTA's backlog"
        parts = [Content.from_markup(f"[{style} b]$icon $word[/]", icon=icon, word=word), self.where_line()]
        if figures is not None and self.state in (BenchState.RUNNING, BenchState.STOPPING, BenchState.DONE):
            parts.append(Content(format_eta(figures.elapsed)))
        if self.options is not None and self.state != BenchState.IDLE:
            target = figures.target if figures is not None else ""
            parts.append(Content(self.form_text.describe(self.options, target)))
        elif self.state == BenchState.IDLE:
            key = "Enter" if self.in_form() else "s"
            parts.append(Content.from_markup("[$text-muted]$key starts a run with these settings[/]", key=key))
        self.query_one("#bench-status", Readout).show(Content(" · ").join(parts))

    def where_line(self) -> Content:
        """Which machines the run's jobs are on: this one, or the hosts the form placed them on."""
        try:
            roles = (self.form_text if self.state != BenchState.IDLE else self.read_form()).roles()
        except KumotuiError:
            roles = None
        if roles is None or set(roles.by_host()) == {LOCAL}:
            return Content.from_markup("on [b]$host[/b] (this machine)", host=self.where)
        generators = ", ".join(spec or LOCAL for spec in roles.generators)
        line = Content.from_markup("generator on [b]$gens[/b]", gens=generators)
        if roles.starts_sink:
            line += Content.from_markup(" · sink on [b]$sink[/b]", sink=roles.sink or LOCAL)
        return line

    def on_descendant_focus(self) -> None:
        """The status line's hint follows the cursor: Enter in the form, s outside it."""
        self.update_status()

    def on_descendant_blur(self) -> None:
        """See :meth:`on_descendant_focus`."""
        self.update_status()

    def watch_state(self, state: BenchState) -> None:
        """Hide the form while a run goes (the panes need the rows), and refresh the keys."""
        running = state in (BenchState.STARTING, BenchState.RUNNING, BenchState.STOPPING)
        self.set_class(running, "-running")
        self.set_class(state == BenchState.DONE, "-done")
        if self.is_mounted:
            self.update_status()
            self.refresh_bindings()

    def watch_show_log(self, show: bool) -> None:
        """Show or hide the log pane; shown, it catches up with the lines kept meanwhile."""
        self.set_class(show, "-log")
        if show and self.is_mounted:
            self.flush_log()

    def show_form_error(self, message: str) -> None:
        """Put the core's message under the form, in the form's words, and the cursor in the field it names."""
        self.query_one("#form-message", Static).update(
            Content.from_markup("[$text-error b]✖ $message[/]", message=for_the_form(message))
        )
        field = field_for_error(message)
        if field is not None and not self.has_class("-running"):
            self.query_one(f"#{field}").focus()

    def clear_form_error(self) -> None:
        """Back to the help line."""
        self.query_one("#form-message", Static).update(Content.from_markup("[$text-muted]$help[/]", help=FORM_HELP))

    # -- the form --------------------------------------------------------

    def in_form(self) -> bool:
        """Whether the cursor is in one of the form's fields."""
        form = self.query_one("#bench-form")
        node = self.focused
        while node is not None:
            if node is form:
                return True
            node = node.parent  # type: ignore[assignment]
        return False

    def read_form(self) -> BenchForm:
        """The form's fields as typed."""

        def text(field: str) -> str:
            return self.query_one(f"#{field}", Input).value

        def choice(field: str) -> str:
            value = self.query_one(f"#{field}", Select).value
            return value if isinstance(value, str) else ""

        return BenchForm(
            backend=choice("backend"),
            sink=choice("sink"),
            target=text("target"),
            messages=text("messages"),
            duration=text("duration"),
            rate=text("rate"),
            concurrency=text("concurrency"),
            body_size=text("body_size"),
            workers=text("workers"),
            sink_workers=text("sink_workers"),
            label=text("label"),
            through=text("through"),
            sink_listen=text("sink_listen"),
            mta_metrics=text("mta_metrics"),
            responses=text("responses"),
            generator_hosts=text("generator_hosts"),
            sink_host=text("sink_host"),
            mta_host=text("mta_host"),
        )

    @on(Select.Changed, "#sink")
    def _sink_changed(self, event: Select.Changed) -> None:
        target = self.query_one("#target", Input)
        target.disabled = event.value != "target"
        self.query_one("#sink_host", Input).disabled = not target.disabled
        if not target.disabled:
            target.focus()

    @on(Input.Changed, "#generator_hosts, #sink_host, #mta_host")
    def _hosts_changed(self) -> None:
        self.update_status()

    @on(Input.Changed, "#through")
    def show_redirect_choice(self) -> None:
        """The port-25 redirect is offered only for a run through an MTA (it redirects the MTA's mail)."""
        self.query_one("#redirect-row").display = bool(self.query_one("#through", Input).value.strip())

    def redirect_wanted(self) -> bool:
        """The checkbox is ticked and offered (a run through an MTA)."""
        return self.query_one("#redirect-row").display and self.query_one("#redirect_port25", Checkbox).value

    def confirm_redirect(self, rule: Redirect, on: str) -> None:
        """In the run's worker, just before the rule is written: ask with the exact rule; only ``y`` writes it.

        Raises:
            KumotuiError: declined, or the run was stopped while asking: nothing is written.
        """
        answers: list[bool] = []
        answered = threading.Event()

        def answer(yes: bool | None) -> None:
            answers.append(bool(yes))
            answered.set()

        self.app.call_from_thread(self.app.push_screen, RedirectConfirmScreen(rule, on), answer)
        while not answered.wait(0.1):
            if self._stop_asked.is_set():
                raise KumotuiError("stopped before the port-25 redirect was confirmed; nothing was written")
        if not answers[0]:
            raise KumotuiError("--redirect-port25: not confirmed, so nothing was written and the run did not start")

    @on(Input.Submitted)
    async def _field_submitted(self) -> None:
        await self.run_action("start")

    @on(OptionList.OptionSelected, "#hints")
    def _hint_selected(self, event: OptionList.OptionSelected) -> None:
        hint = self.query_one(HintList).hints.get(event.option.id or "")
        if hint is not None:
            self.jump_to(hint)

    def jump_to(self, hint: Hint) -> None:
        """Go where the hint's fix is: a form field for a flag, the tuning screen's row for a key."""
        param = hint.param
        if not param:
            self.notify("This hint has no parameter to jump to.", markup=False)
            return
        if param.startswith("--"):
            field = field_for_error(param)
            if field is None or self.has_class("-running"):
                self.notify(f"Change {param} in the form for the next run.", markup=False)
                return
            self.query_one(f"#{field}").focus()
            return
        show_param = getattr(self.app, "show_param_on", None)
        if show_param is not None:
            show_param(hint.host, param)

    # -- actions ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer only what applies now (the footer and the command palette both ask)."""
        running = self.state in (BenchState.STARTING, BenchState.RUNNING)
        if action == "start":
            return self.state in (BenchState.IDLE, BenchState.DONE, BenchState.FAILED)
        if action == "stop":
            return running
        if action == "edit_form":
            return not running and self.state != BenchState.STOPPING
        if action == "leave_form":
            return self.in_form()
        if action == "next_host":
            return len(self.hosts) > 1 and self.has_class("-short")
        return True

    def action_start(self) -> None:
        """Check the form through the core; start the run, or say what is wrong."""
        if self.state not in (BenchState.IDLE, BenchState.DONE, BenchState.FAILED):
            return
        form = self.read_form()
        try:
            options = form.options()
            if self.redirect_wanted():
                options = replace(options, redirect_port25=True).validate()
        except KumotuiError as error:
            self.show_form_error(str(error))
            return
        self.clear_form_error()
        self.form_text, self.options = form, options
        self.error = ""
        self.figures = None
        self.outcome = None
        self._stop_asked.clear()
        self.bench = None
        self.query_one("#bench-summary", Static).update("")
        for pane in self.query(Pane):
            pane.reset()
        self.query_one(ChartRow).show(NO_THROUGHPUT, NO_LATENCY, NO_CPU, force=True)
        self.summary_shown = False
        self.query_one(HintList).reset()
        self.query_one(Log).clear()
        self.state = BenchState.STARTING
        self._idle.clear()
        self.set_focus(None)  # the form hides; single keys (s stops) go to the screen
        self.run_benchmark(form, options)

    def action_stop(self) -> None:
        """Stop the run early: the worker stops the generator, then the sink, and saves the partial run."""
        if self.state not in (BenchState.STARTING, BenchState.RUNNING):
            return
        self._stop_asked.set()
        if self.bench is not None:
            self.bench.request_stop()
        self.state = BenchState.STOPPING

    def action_edit_form(self) -> None:
        """Put the cursor in the form's first field."""
        self.query_one("#backend").focus()

    def action_leave_form(self) -> None:
        """Leave the form so single keys work again."""
        hints = self.query_one(HintList)
        if hints.display:
            hints.focus()
        else:
            self.set_focus(None)

    def action_next_host(self) -> None:
        """Show the next host's pane (a short terminal shows one host at a time)."""
        if len(self.hosts) > 1:
            self.query_one(HostPanes).next_host()

    def action_toggle_log(self) -> None:
        """Show or hide the jobs' output."""
        self.show_log = not self.show_log

    def run_active(self) -> bool:
        """Whether a run is starting, running or stopping (the app asks before quitting then)."""
        return self.state in (BenchState.STARTING, BenchState.RUNNING, BenchState.STOPPING)
