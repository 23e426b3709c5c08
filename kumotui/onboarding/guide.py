"""Guided first-time setup: detect, tune, start a sink, benchmark, summarise.

The path is five steps a newcomer walks in order; each can be done or
skipped, and progress is saved in the state dir so the path resumes where
it stopped (after a quit, a crash or a reboot). This module holds the
steps, the detection, the benchmark defaults scaled to the machine and the
final summary; the app only renders them.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kumotui.backends import Backend, SinkRequest
from kumotui.backends.job import Job
from kumotui.backends.process import Launcher
from kumotui.backends.samples import Sample
from kumotui.bench.options import BenchOptions
from kumotui.bench.published import versus_published
from kumotui.bench.records import RunRecord
from kumotui.bench.report import report_markdown, reports_dir
from kumotui.bench.run import Benchmark, BenchOutcome, prepare_plan, run_and_record
from kumotui.errors import KumotuiError
from kumotui.hosts import Host, HostFacts
from kumotui.hosts.address import parse_address
from kumotui.hosts.local import LocalHost, atomic_write, require_private_dir
from kumotui.onboarding.detect import Port25, kumomta_install, local_mta, outbound_port25
from kumotui.settings import Settings
from kumotui.text.format import format_mmh, format_rate
from kumotui.tuning.journal import Entry
from kumotui.tuning.limits import needed, unit_limit
from kumotui.tuning.values import normalize

STEPS = ("detect", "tune", "sink", "bench", "summary")
"""The guided path, in order."""
STEP_TITLES = {
    "detect": "Detect this host",
    "tune": "Review and apply the kernel profile",
    "sink": "Choose and start a sink",
    "bench": "Run a first benchmark",
    "summary": "Summary and next steps",
}
STATE_FILE = "setup.json"


@dataclass(frozen=True)
class GuideState:
    """Which steps are done or skipped, and what they produced."""

    statuses: dict[str, str] = field(default_factory=dict)
    """step -> ``done`` or ``skipped`` (absent: not reached yet)."""
    started: str = ""
    applied: tuple[str, ...] = ()
    """Journal entry ids applied during the guide (what changed)."""
    sink_target: str | None = None
    sink_backend: str | None = None
    run_id: str | None = None
    report_path: str | None = None

    @property
    def current(self) -> str | None:
        """The first step neither done nor skipped: where the path resumes."""
        return next((step for step in STEPS if step not in self.statuses), None)

    @property
    def finished(self) -> bool:
        """Every step done or skipped."""
        return self.current is None

    def mark(self, step: str, status: str, **produced: Any) -> GuideState:
        """A copy with ``step`` marked ``done`` or ``skipped`` (and what it produced)."""
        if step not in STEPS or status not in ("done", "skipped"):
            raise ValueError(f"unknown step or status: {step} {status}")
        return replace(self, statuses={**self.statuses, step: status}, **produced)


def state_path(state_dir: Path) -> Path:
    """Where the guide's progress is kept."""
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> GuideState | None:
    """The saved progress, or None on first run (no state yet).

    Raises:
        RefusedPath: the state dir could be changed by someone else.
    """
    require_private_dir(state_dir)
    try:
        data = json.loads(state_path(state_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return GuideState()  # unreadable progress: start over rather than fail
    data["applied"] = tuple(data.get("applied", ()))
    known = {f for f in GuideState.__dataclass_fields__}
    return GuideState(**{k: v for k, v in data.items() if k in known})


def save_state(state_dir: Path, state: GuideState) -> None:
    """Save progress (small file, written whole; the state dir must be private)."""
    require_private_dir(state_dir)
    if not state.started:
        state = replace(state, started=datetime.now(UTC).isoformat(timespec="seconds"))
    atomic_write(state_path(state_dir), json.dumps(asdict(state), indent=2) + "\n", mode=0o600)


def is_first_run(state_dir: Path) -> bool:
    """No journal, no runs and no guide progress yet: offer the guided path."""
    return not any((state_dir / name).exists() for name in ("journal", "runs", STATE_FILE))


# --- step 1: detect -------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """What step 1 shows."""

    facts: HostFacts
    kumomta_sbin: str | None
    kumomta_version: str | None
    postfix_tools: bool
    privilege: str
    nofile_hard: int | None
    """The hard open-file limit kumod will get (kumomta.service when systemd has it, else this account's)."""
    nofile_source: str
    port25: Port25
    mta: str | None = None
    """The greeting of an MTA on this host's port 25: the guide then offers to benchmark it."""
    mta_address: str = "127.0.0.1:25"
    """Where that MTA answered."""

    def lines(self, concurrency: int) -> list[tuple[str, str, str]]:
        """(what, finding, verdict) rows for the screen; verdict ``ok``, ``warn`` or ``info``."""
        kumo = (
            f"{self.kumomta_version} in {self.kumomta_sbin}"
            if self.kumomta_sbin
            else "not installed: the built-in sink and generator will be used"
        )
        nofile = "unlimited" if self.nofile_hard is None else f"{self.nofile_hard:,}"
        enough = self.nofile_hard is None or self.nofile_hard >= needed(concurrency)
        return [
            ("Host", f"{self.facts.hostname}, kernel {self.facts.kernel}", "info"),
            ("CPUs / RAM", f"{self.facts.cpus} CPUs, {self.facts.memory_bytes / 2**30:.1f} GiB", "info"),
            ("KumoMTA", kumo, "ok" if self.kumomta_sbin else "info"),
            ("Postfix tools", "smtp-sink and smtp-source found" if self.postfix_tools else "not found", "info"),
            ("Privilege", self.privilege, "ok" if self.privilege in ("root", "sudo", "direct") else "warn"),
            (
                "Open files (hard)",
                f"{nofile} from {self.nofile_source}; {needed(concurrency):,} needed for {concurrency:,} connections",
                "ok" if enough else "warn",
            ),
            ("Outbound port 25", self.port25.evidence, "ok" if self.port25.blocked else "warn"),
            (
                "MTA here",
                f"{self.mta} on {self.mta_address}: step 4 can measure it (generator → MTA → sink)"
                if self.mta
                else "none on 127.0.0.1:25: step 4 calibrates the harness (generator → sink)",
                "info",
            ),
        ]


def detect(host: Host, facts: HostFacts, privilege: str) -> Detection:
    """Everything step 1 shows, read without changing or sending anything."""
    kumo = kumomta_install(host)
    has_postfix = Backend.POSTFIX.impl.missing() is None
    unit = unit_limit(host)
    if unit is not None:
        hard, source = unit.hard, unit.source
    else:
        _soft, raw = resource.getrlimit(resource.RLIMIT_NOFILE)
        hard = None if raw == resource.RLIM_INFINITY else raw
        source = "this account (getrlimit)"
    mta = local_mta() if isinstance(host, LocalHost) else None
    return Detection(facts, kumo.sbin, kumo.version, has_postfix, privilege, hard, source, outbound_port25(host), mta)


# --- step 4: a first benchmark ---------------------------------------------------------


@dataclass(frozen=True)
class FirstBench:
    """Defaults for a first run, scaled to the machine so it takes well under a minute."""

    messages: int
    concurrency: int
    body_size: int


def first_bench_defaults(cpus: int, nofile_hard: int | None) -> FirstBench:
    """KumoMTA's docs use 100 KB x 100,000 at concurrency 20,000 on big machines; a first run
    here uses the same message size, a count a small box finishes in seconds, and a concurrency
    the open-file limit can hold."""
    concurrency = min(50 * max(cpus, 1), 2000)
    if nofile_hard is not None:
        concurrency = max(10, min(concurrency, (nofile_hard - 1024) // 2))
    return FirstBench(messages=min(5000 * max(cpus, 1), 100_000), concurrency=concurrency, body_size=100_000)


GUIDE_SINK = SinkRequest(host="127.0.0.1")
"""The guide's sink listens on loopback: KumoMTA's port 2026 for kumod and smtp-sink, a free port for builtin."""


def start_sink(backend: str, launcher: Launcher | None = None) -> tuple[Job, str]:
    """Step 3: start a sink of ``backend`` here and wait until it accepts mail; returns it and its ``host:port``."""
    launcher = launcher or Launcher()
    sink = Backend(backend).impl.sink(launcher, GUIDE_SINK)
    sink.start().wait_ready()
    return sink, f"{launcher.address}:{sink.port}"


def run_first_bench(
    settings: Settings,
    host: Host,
    state_dir: Path,
    defaults: FirstBench,
    *,
    backend: str,
    sink: Job | None = None,
    target: str | None = None,
    facts: HostFacts | None = None,
    on_samples: Callable[[list[Sample]], None] | None = None,
    through: str | None = None,
) -> tuple[BenchOutcome, Path]:
    """Step 4: the first run, saved like any other, plus a Markdown report beside the records.

    It sends to ``target`` (the guide's sink, which the run then stops), or
    starts a sink of ``backend`` itself when step 3 was skipped. With
    ``through`` (an MTA on this host) the messages go to the MTA, whose
    routing must deliver to that sink: the routing probe checks it first.
    The guide's sink is then replaced by one at the same address that reads
    the run's stamps, so every message is accounted for, not only counted.
    """
    sink_request = None
    if through is not None and target is not None:
        if sink is not None:
            sink.stop()  # its address is where the MTA delivers; the run's own sink takes it over
        listen_host, listen_port = parse_address(target)
        sink_request, sink, target = replace(GUIDE_SINK, host=listen_host, port=listen_port), None, None
    options = BenchOptions(
        target=target,
        local_sink=target is None,
        messages=defaults.messages,
        concurrency=defaults.concurrency,
        body_size=defaults.body_size,
        through=through,
    )
    plan, host_facts = prepare_plan(settings, host, options, backend=backend, sink=sink_request)
    bench = Benchmark(plan, sink=sink if target is not None else None)
    outcome = run_and_record(bench, facts or host_facts, state_dir, on_samples)
    report = reports_dir(state_dir) / f"{outcome.record.id}.md"
    try:
        atomic_write(report, report_markdown(outcome.record), mode=0o600)
    except OSError as error:
        raise KumotuiError(f"cannot write the report {report}: {error.strerror}") from None
    return outcome, report


# --- step 5: summary -------------------------------------------------------------------


def summary_lines(state: GuideState, entries: list[Entry], run: RunRecord | None, routing: str | None) -> list[str]:
    """The closing page: what changed, the result against published figures, where the report
    is, and what to do next.

    The routing snippet itself is not among the lines: the screen shows it
    unwrapped in a code block (a wrapped Lua comment would read as code).
    The guide's own sink stopped with its run, so the lines say how to start
    one that stays up at the address the snippet names.
    """
    lines = ["What changed:"]
    applied = [e for e in entries if e.id in state.applied]
    if not applied:
        lines.append("  nothing: the kernel profile was skipped or already satisfied.")
    for entry in applied:
        keys = ", ".join(f"{c.key} {normalize(c.before)} -> {c.after}" for c in entry.changes) or "files only"
        undo = " (rolled back)" if entry.rolled_back_by else f" (undo: kumotui rollback {entry.id})"
        lines.append(f"  {entry.profile}: {keys}{undo}")
    lines.append("")
    if run is not None and run.generator is not None:
        gen = run.generator
        lines.append(
            f"First benchmark: {gen.count:,} messages of {run.config.body_size or 0:,} bytes, "
            f"{format_rate(gen.msgs_per_s)} msgs/s = {format_mmh(gen.mmh)} MMH ({run.config.backend} backend)."
        )
        lines.append(f"  Against KumoMTA's published figures: {versus_published(gen.mmh, run.host.cpus)}.")
        if run.config.target.startswith(("127.", "[::1]", "::1", "localhost")):
            lines.append(
                "  (Sender and sink shared this machine over loopback, with no network in between: an "
                "upper bound for this host, not like for like with the published, networked runs.)"
            )
        if state.report_path:
            lines.append(f"  Report saved: {state.report_path}")
    else:
        lines.append("First benchmark: skipped.")
    lines += [
        "",
        "Next steps:",
        "  - Compare after changes: run another benchmark, then `kumotui report RUN1 RUN2`.",
        "  - Check the open-file limit kumod gets: `kumotui limits --concurrency 20000`.",
        "  - Benchmark across machines: `kumotui bench --sink-host SINK --host SENDER ...`.",
    ]
    if routing and state.sink_target:
        lines += [
            "  - Route an MTA under test to a sink. The guide's sink stopped with its run; start one",
            f"    that stays up: `{sink_command(state.sink_target, state.sink_backend)}`,",
            "    then add the init.lua below to the MTA's policy (y copies it).",
        ]
    return lines


def sink_command(target: str, backend: str | None) -> str:
    """The command that starts a sink which stays up at ``target`` (the routing snippet's address)."""
    return f"kumotui sink --backend {backend or 'builtin'} --listen {target}"
