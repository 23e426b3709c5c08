"""The guided first-time setup: detect -> tune -> sink -> first benchmark -> summary.

Each step says what it is for, shows what kumotui found or did, and waits
for the operator: Enter does the step, ``s`` skips it, Escape leaves (the
path resumes at the same step next time, from :mod:`kumotui.guide`'s saved
progress). Everything that reads, writes or sends runs in thread workers;
the sink this screen starts is stopped when the benchmark ends or the
screen goes away, so nothing outlives it.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from kumotui.backends import available
from kumotui.backends.job import Job
from kumotui.backends.kumomta.policy import routing_snippet
from kumotui.backends.samples import Sample, mmh
from kumotui.bench.run import Benchmark, BenchOutcome
from kumotui.errors import KumotuiError
from kumotui.hosts import Host, HostFacts
from kumotui.hosts.address import parse_address
from kumotui.hosts.connect import open_host
from kumotui.onboarding import guide
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.text.format import format_mmh, format_rate
from kumotui.tuning.findings import evaluate, summary
from kumotui.tuning.journal import EntryKind, EntryStatus
from kumotui.tuning.privilege import detect_privilege
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.target import Target
from kumotui.ui.notices import notify_error

VERDICT_MARK = {"ok": "✔", "warn": "⚠", "info": "·"}


class GuideScreen(Screen[None]):
    """Five steps from a fresh server to a tuned host and a first result."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "do_step", "Do step", id="guide-do", tooltip="Do what this step describes, then go on"),
        Binding("s", "skip_step", "Skip", id="guide-skip", tooltip="Skip this step; the path goes on"),
        Binding(
            "m",
            "measure_mta",
            "Measure MTA",
            id="guide-mta",
            tooltip="Step 4: send through the MTA on this host (generator → MTA → sink) instead of calibrating",
        ),
        Binding("t", "open_tuning", "Tuning", id="guide-tuning", tooltip="The tuning screen; g comes back here"),
        Binding("escape", "leave", "Leave", id="guide-leave", tooltip="Leave the guide; g resumes it at this step"),
    ]

    class Detected(Message):
        """Step 1's findings are in."""

        def __init__(self, detection: guide.Detection) -> None:
            super().__init__()
            self.detection = detection

    class Reviewed(Message):
        """The profile was judged against the host (step 2)."""

        def __init__(self, text: str, pending: int) -> None:
            super().__init__()
            self.text = text
            self.pending = pending

    class SinkReady(Message):
        """Step 3's sink accepts mail."""

        def __init__(self, backend: str, target: str) -> None:
            super().__init__()
            self.backend = backend
            self.target = target

    class BenchProgressed(Message):
        """A reading of the first benchmark (at most twice a second)."""

        def __init__(self, sample: Sample, messages: int) -> None:
            super().__init__()
            self.sample = sample
            self.messages = messages

        def can_replace(self, message: Message) -> bool:
            """A newer reading makes a queued older one pointless."""
            return isinstance(message, GuideScreen.BenchProgressed)

    class BenchFinished(Message):
        """The first benchmark ended and was saved."""

        def __init__(self, outcome: BenchOutcome, report: Path) -> None:
            super().__init__()
            self.outcome = outcome
            self.report = report

    def __init__(
        self,
        settings: Settings,
        *,
        host_facts: HostFacts | None = None,
        detection: guide.Detection | None = None,
    ) -> None:
        """Create the guide for ``settings`` (its state dir holds the progress).

        ``host_facts`` and ``detection`` fix what step 1 shows (screenshots);
        both are read from the host when None.
        """
        super().__init__(id="guide")
        self.settings = settings
        self.fixed_facts = host_facts
        self.fixed_detection = detection
        self.state_dir = (settings.state_dir or default_state_dir()).absolute()
        self.state = guide.load_state(self.state_dir) or guide.GuideState()
        self.detection: guide.Detection | None = None
        self.sink: Job | None = None
        self.busy = ""
        self._stop = threading.Event()
        self.bench: Benchmark | None = None
        self.routing: str | None = None
        """The summary's init.lua snippet, once shown."""

    # -- layout ------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Step line, the step's text, a backend choice and a progress bar (shown when used)."""
        yield Static(id="guide-steps")
        with VerticalScroll(id="guide-body"):
            yield Static(id="guide-text")
            yield Select[str]([("builtin", "builtin")], value="builtin", allow_blank=False, id="guide-backend")
            yield ProgressBar(total=100, show_eta=False, id="guide-progress")
            # The routing snippet: unwrapped and scrollable, so a Lua comment never wraps into code.
            yield TextArea("", read_only=True, soft_wrap=False, show_cursor=False, id="guide-code")
        yield Footer()

    def on_mount(self) -> None:
        """Show where the path stands and start the current step's reading."""
        guide.save_state(self.state_dir, self.state)
        self.show_step()

    def on_unmount(self) -> None:
        """Stop a sink or a run this screen started: nothing outlives the guide."""
        self._stop.set()
        if self.bench is not None:
            self.bench.request_stop()
            self.bench.stop()
        if self.sink is not None:
            self.sink.stop()

    def on_screen_resume(self) -> None:
        """Back from the tuning screen: judge the host again."""
        if self.state.current == "tune":
            self.review()

    # -- rendering ---------------------------------------------------------------

    def show_step(self) -> None:
        """Render the step line and the current step's page."""
        marks = []
        for number, name in enumerate(guide.STEPS, start=1):
            status = self.state.statuses.get(name)
            mark = (
                "✔" if status == "done" else "–" if status == "skipped" else "▶" if name == self.state.current else " "
            )
            marks.append(f"{mark} {number} {name}")
        self.query_one("#guide-steps", Static).update("  ".join(marks))
        step = self.state.current
        self.query_one("#guide-backend").display = step == "sink"
        self.query_one("#guide-progress").display = step == "bench" and self.busy == "bench"
        self.query_one("#guide-code").display = False
        if step == "detect":
            self.say(
                "Step 1 of 5 · " + guide.STEP_TITLES["detect"],
                "Reading this host: kernel, CPUs, RAM, "
                "KumoMTA and Postfix, privilege, open-file limit, outbound port 25 (rules only; nothing is sent)…",
            )
            self.detect()
        elif step == "tune":
            self.say("Step 2 of 5 · " + guide.STEP_TITLES["tune"], "Judging the kernel against the profile…")
            self.review()
        elif step == "sink":
            self.show_sink_step()
        elif step == "bench":
            self.show_bench_step()
        elif step == "summary" or step is None:
            self.show_summary()
        self.refresh_bindings()

    def say(self, title: str, body: str) -> None:
        """Replace the page's text."""
        # Text, not markup: bodies quote Lua and paths such as '[127.0.0.1]'.
        self.query_one("#guide-text", Static).update(Text.assemble((title, "bold"), "\n\n", body))

    def show_sink_step(self) -> None:
        """Step 3: pick a backend for the sink."""
        found = available()
        select = self.query_one("#guide-backend", Select)
        select.set_options([(name, name) for name in found])
        select.value = "kumomta" if "kumomta" in found else found[0]
        self.say(
            "Step 3 of 5 · " + guide.STEP_TITLES["sink"],
            "A sink accepts mail and throws it away, so a benchmark measures the sender, never a real "
            "mailbox. Choose the backend below (only those installed here are offered; kumomta writes "
            "a sink policy and runs kumod with it on port 2026, as KumoMTA's docs do).\n\n"
            "Enter starts the sink on this host and waits until it accepts mail.",
        )

    def show_bench_step(self) -> None:
        """Step 4: what the first run will do."""
        defaults = self.first_bench()
        target = self.state.sink_target or "a built-in sink started for this run (step 3 was skipped)"
        self.say(
            "Step 4 of 5 · " + guide.STEP_TITLES["bench"],
            f"{defaults.messages:,} messages of {defaults.body_size // 1000} KB (KumoMTA's published size) "
            f"over {defaults.concurrency:,} connections to {target}, sized so this machine finishes in "
            "seconds. The result is saved with the kernel values it ran on, so a later run can be "
            "compared (kumotui report).\n\nEnter starts it: a calibration of the harness (generator → sink)."
            + self.mta_offer(),
        )

    def mta_offer(self) -> str:
        """Step 4's second path, when an MTA answers on this host: measure it, not the harness."""
        detection = self.detection
        if detection is None or not detection.mta or not self.state.sink_target:
            return ""
        return (
            f"\n\nAn MTA answers on {detection.mta_address} ({detection.mta}). m measures it instead: "
            f"generator → your MTA → the sink at {self.state.sink_target}. Its routing must deliver there "
            "(the snippet is in step 5 and `kumotui sink --print-routing`); three probe messages check that "
            "first, and nothing more is sent if they do not arrive."
        )

    def show_summary(self) -> None:
        """Step 5: what changed, the result, next steps."""
        from kumotui.bench.records import load_run

        target = Target.from_settings(replace(self.settings, hosts=()))
        run = None
        if self.state.run_id:
            try:
                run = load_run(self.state_dir, self.state.run_id)
            except KumotuiError:  # the record was deleted or damaged: say the run was skipped
                run = None
        routing = None
        if self.state.sink_target:
            routing = routing_snippet(*parse_address(self.state.sink_target))
        lines = guide.summary_lines(self.state, target.journal.entries(), run, routing)
        self.say("Step 5 of 5 · " + guide.STEP_TITLES["summary"], "\n".join(lines) + "\n\nEnter finishes the guide.")
        self.routing = routing
        code = self.query_one("#guide-code", TextArea)
        code.load_text(routing or "")
        code.display = routing is not None

    def copy_text(self) -> tuple[str, str] | None:
        """What y copies here: the routing snippet on the summary, else the report path once there is one."""
        if self.state.current in ("summary", None) and self.routing:
            return "init.lua routing snippet", self.routing
        if self.state.report_path:
            return "report path", self.state.report_path
        return None

    def first_bench(self) -> guide.FirstBench:
        """Defaults scaled to this machine (CPUs, and the open-file limit when detected)."""
        cpus = self.detection.facts.cpus if self.detection else (self.fixed_facts.cpus if self.fixed_facts else 2)
        nofile = self.detection.nofile_hard if self.detection else None
        return guide.first_bench_defaults(cpus, nofile)

    # -- workers -----------------------------------------------------------------

    def open(self) -> Host:
        """The host the guide works on (local, or the one --host names)."""
        return open_host(self.settings.hosts[0] if self.settings.hosts else None, self.settings)

    @work(thread=True, group="guide-detect", exclusive=True, exit_on_error=False)
    def detect(self) -> None:
        """Step 1's readings."""
        if self.fixed_detection is not None:
            self.post_message(self.Detected(self.fixed_detection))
            return
        host = self.open()
        try:
            target = Target.from_settings(self.settings, host)
            facts = self.fixed_facts or target.tree.facts()
            detection = guide.detect(host, facts, str(detect_privilege(target)))
        finally:
            host.close()
        self.post_message(self.Detected(detection))

    @work(thread=True, group="guide-review", exclusive=True, exit_on_error=False)
    def review(self) -> None:
        """Step 2's verdict on the host."""
        host = self.open()
        try:
            findings = evaluate(load_profile(self.settings.profile), Target.from_settings(self.settings, host).tree)
        finally:
            host.close()
        pending = sum(1 for f in findings if f.needs_change)
        self.post_message(self.Reviewed(summary(findings), pending))

    @work(thread=True, group="guide-sink", exclusive=True, exit_on_error=False)
    def start_sink(self, backend: str) -> None:
        """Start a sink on 127.0.0.1 (KumoMTA's port 2026 for kumomta, a free port otherwise)."""
        self.sink, target = guide.start_sink(backend)
        self.post_message(self.SinkReady(backend, target))

    @work(thread=True, group="guide-bench", exclusive=True, exit_on_error=False)
    def run_bench(self, target: str | None, backend: str, through: str | None = None) -> None:
        """The first benchmark against the guide's sink (or a built-in one it starts when step 3
        was skipped); saved with a Markdown report."""
        defaults = self.first_bench()
        host = self.open()
        try:
            outcome, report = guide.run_first_bench(
                self.settings,
                host,
                self.state_dir,
                defaults,
                backend=backend,
                sink=self.sink,
                target=target,
                facts=self.fixed_facts,
                on_samples=lambda samples: self._progress(samples, defaults.messages),
                through=through,
            )
        finally:
            host.close()
            if self.sink is not None:
                self.sink.stop()  # the guide's sink has done its job
        self.post_message(self.BenchFinished(outcome, report))

    def _progress(self, samples: list[Sample], messages: int) -> None:
        for sample in samples:
            if sample.role == "generator":
                self.post_message(self.BenchProgressed(sample, messages))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where a failed step becomes a clear notice; the step stays open."""
        if event.state is WorkerState.ERROR:
            self.busy = ""
            notify_error(self, event.worker.error, "This step failed")
            self.refresh_bindings()

    # -- results ---------------------------------------------------------------------

    def on_guide_screen_detected(self, message: Detected) -> None:
        """Show step 1's table."""
        self.detection = message.detection
        concurrency = self.first_bench().concurrency
        rows = [
            f"{VERDICT_MARK[verdict]} {what:<18} {finding}"
            for what, finding, verdict in message.detection.lines(concurrency)
        ]
        advice = message.detection.port25.advice
        self.say(
            "Step 1 of 5 · " + guide.STEP_TITLES["detect"],
            "\n".join(rows) + f"\n\n{advice}\n\nEnter goes on to the kernel profile.",
        )
        self.refresh_bindings()

    def on_guide_screen_reviewed(self, message: Reviewed) -> None:
        """Show step 2's verdict and how to act on it."""
        if self.state.current != "tune":
            return
        action = (
            "t opens the tuning screen: review each parameter (Enter explains, e edits), press a to "
            "preview and apply, then g comes back here. Enter marks this step done."
            if message.pending
            else "Nothing needs changing. Enter goes on."
        )
        self.say(
            "Step 2 of 5 · " + guide.STEP_TITLES["tune"],
            f"Profile {self.settings.profile}: {message.text}\n\nkumotui never lowers a value the kernel "
            f"already has higher; every change is journaled and `kumotui rollback` undoes it.\n\n{action}",
        )

    def on_guide_screen_sink_ready(self, message: SinkReady) -> None:
        """Step 3 is done: record the sink and go on."""
        self.busy = ""
        self.advance("sink", "done", sink_target=message.target, sink_backend=message.backend)
        self.notify(f"{message.backend} sink ready at {message.target}", title="Sink started")

    def on_guide_screen_bench_progressed(self, message: BenchProgressed) -> None:
        """Move the progress bar and say the live figures."""
        sample = message.sample
        bar = self.query_one("#guide-progress", ProgressBar)
        bar.display = True
        bar.update(total=message.messages, progress=sample.count)
        rate = sample.rate or 0.0
        self.say(
            "Step 4 of 5 · " + guide.STEP_TITLES["bench"],
            f"sent {sample.count:,} of {message.messages:,} · failed {sample.failed:,} · "
            f"{format_rate(rate)} msgs/s · {format_mmh(mmh(rate))} MMH",
        )

    def on_guide_screen_bench_finished(self, message: BenchFinished) -> None:
        """Step 4 is done: record the run and its report."""
        self.busy = ""
        self.bench = None
        self.advance("bench", "done", run_id=message.outcome.record.id, report_path=str(message.report))

    # -- actions ---------------------------------------------------------------------

    def advance(self, step: str, status: str, **produced: object) -> None:
        """Mark a step, save progress, show the next step."""
        self.state = self.state.mark(step, status, **produced)
        guide.save_state(self.state_dir, self.state)
        self.show_step()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No step actions while a step's work is running; tuning only on its step."""
        if action in ("do_step", "skip_step") and self.busy:
            return None
        if action == "measure_mta":
            return self.state.current == "bench" and bool(self.mta_offer()) and not self.busy
        return not (action == "skip_step" and self.state.current in ("summary", None))

    def action_measure_mta(self) -> None:
        """Step 4 through the MTA on this host: the probe first, then the first run, measuring the MTA."""
        if not self.check_action("measure_mta", ()):
            return
        assert self.detection is not None  # check_action saw an MTA
        self.busy = "bench"
        self.show_step()
        self.run_bench(self.state.sink_target, self.state.sink_backend or "builtin", through=self.detection.mta_address)
        self.refresh_bindings()

    def action_do_step(self) -> None:
        """Do the current step."""
        step = self.state.current
        if step in ("detect", "tune"):
            applied = self.applied_since_start() if step == "tune" else ()
            self.advance(step, "done", **({"applied": applied} if step == "tune" else {}))
        elif step == "sink":
            backend = self.query_one("#guide-backend", Select).value
            self.busy = "sink"
            self.say("Step 3 of 5 · " + guide.STEP_TITLES["sink"], f"Starting the {backend} sink…")
            self.start_sink(str(backend))
        elif step == "bench":
            self.busy = "bench"
            self.show_step()
            self.run_bench(self.state.sink_target, self.state.sink_backend or "builtin")
        else:
            if "summary" not in self.state.statuses:
                self.state = self.state.mark("summary", "done")
                guide.save_state(self.state_dir, self.state)
            self.app.pop_screen()
        self.refresh_bindings()

    def action_skip_step(self) -> None:
        """Skip the current step."""
        step = self.state.current
        if step is not None:
            self.advance(step, "skipped")

    def action_open_tuning(self) -> None:
        """Show the tuning screen under the guide, at any step (g brings the guide back where it was)."""
        self.app.pop_screen()

    def action_leave(self) -> None:
        """Leave; the progress is saved and g resumes here."""
        self.app.pop_screen()

    def applied_since_start(self) -> tuple[str, ...]:
        """Journal entries applied (and not rolled back) since the guide started: what step 2 changed."""
        target = Target.from_settings(replace(self.settings, hosts=()))
        started = datetime.fromisoformat(self.state.started) if self.state.started else datetime.min.replace(tzinfo=UTC)
        return tuple(
            e.id
            for e in target.journal.entries()
            if e.kind is EntryKind.APPLY
            and e.status is EntryStatus.APPLIED
            and not e.rolled_back_by
            and datetime.fromisoformat(e.time) >= started
        )
