"""The live benchmark as plain data: the form's fields, each tick's figures, and their wording.

The app's benchmark screen shows what this module computes. Nothing here
imports Textual, so every number on that screen (progress, ETA, MMH, the
latency trend, host rates, the hints) is derived once, here, and tested
without a terminal. A tick runs in the worker thread that drives the
:class:`~kumotui.benchmark.Benchmark`, so host readings and hint rules never
run on the UI's event loop; series and logs are bounded so a long run costs
the same memory as a short one.
"""

from __future__ import annotations

import math
import resource
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from kumotui.benchmark import Benchmark, BenchOutcome, BenchPlan, available_backends, resolve_backend
from kumotui.benchrun import BenchOptions, parse_size
from kumotui.errors import KumotuiError
from kumotui.hints import Hint, HintInputs, evaluate, port_range_width
from kumotui.hoststats import HostSampler, HostStats, ProcessCpu, interface_for, process_cpu
from kumotui.jobs import Launcher
from kumotui.runs import PUBLISHED_BODY_SIZE, versus_published
from kumotui.samples import Sample, eta_seconds, mmh

DEFAULT_DURATION = 60.0
"""Seconds the generators send for when neither messages nor a duration is given."""
LIVE_SERIES_LIMIT = 300
"""Samples per role a live run keeps for its record (thinned evenly beyond that).

At 2 Hz this bound is reached after 2.5 minutes, so the app's memory stays
flat however long a run lasts; ``kumotui bench`` keeps an hour's worth."""
LIVE_LOG_LINES = 250
"""Output lines each job of a live run keeps (enough to read an error; the built-in
engines print two a second, so the bound is reached within about two minutes)."""
SERIES_POINTS = 120
"""Points kept per sparkline: a minute at the 2 Hz the benchmark samples at."""
LOG_KEEP = 500
"""Job log lines waiting for the screen (the latest ones, both jobs interleaved); older
ones are dropped, so a hidden log pane costs a fixed amount of memory."""
TREND_SPAN = 6
"""Readings compared on each side for a trend (3 s at 2 Hz)."""
TREND_THRESHOLD = 0.15
"""A mean that moved by more than this share is a trend, not noise."""
DASH = "–"

SINK_CHOICES: dict[str, str] = {"local": "start one here", "target": "use a target"}
"""How the run gets its sink: started with the chosen backend, or an existing ``host:port``."""

FIELD_FLAGS: dict[str, str] = {
    "backend": "--backend",
    "target": "--target",
    "messages": "--messages",
    "duration": "--duration",
    "rate": "--rate",
    "concurrency": "--concurrency",
    "body_size": "--body-size",
    "workers": "--workers",
}
"""Each form field and the ``kumotui bench`` flag it stands for (errors name the flag)."""


# --- the form ------------------------------------------------------------------------


def _number(text: str, flag: str, *, whole: bool) -> float | None:
    """A form field as a number; empty means not given. Separators (``100,000``) are allowed."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned:
        return None
    try:
        value = int(cleaned) if whole else float(cleaned)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise KumotuiError(f"{flag} {text.strip()!r}: expected {kind}") from None
    if not math.isfinite(value):
        raise KumotuiError(f"{flag} {text.strip()!r}: expected a finite number")
    return value


@dataclass(frozen=True)
class BenchForm:
    """The benchmark screen's form as typed: every field a string, checked by :meth:`options`."""

    backend: str = "builtin"
    sink: str = "local"
    """A key of :data:`SINK_CHOICES`."""
    target: str = ""
    """``host:port`` of an existing sink, when ``sink`` is ``target``."""
    messages: str = "100000"
    duration: str = ""
    """Seconds; empty for no deadline (60 s when messages is empty too)."""
    rate: str = ""
    """At most this many messages per second; empty for as fast as possible."""
    concurrency: str = "50"
    body_size: str = "1KB"
    workers: str = "1"

    def options(self) -> BenchOptions:
        """The validated request; KumotuiError naming the flag of the first bad field."""
        resolve_backend(self.backend)
        if self.sink not in SINK_CHOICES:
            raise KumotuiError(f"sink {self.sink!r}: choose {' or '.join(SINK_CHOICES)}")
        local = self.sink == "local"
        target = None if local else self.target.strip()
        if target == "":
            raise KumotuiError("--target: give the HOST:PORT of a running sink, or start one here")
        messages = _number(self.messages, "--messages", whole=True)
        concurrency = _number(self.concurrency, "--concurrency", whole=True)
        workers = _number(self.workers, "--workers", whole=True)
        return BenchOptions(
            target=target,
            local_sink=local,
            messages=int(messages) if messages is not None else None,
            duration=_number(self.duration, "--duration", whole=False),
            rate=_number(self.rate, "--rate", whole=False),
            concurrency=int(concurrency) if concurrency is not None else 50,
            body_size=parse_size(self.body_size.strip() or "1KB"),
            workers=int(workers) if workers is not None else 1,
        ).validate()

    def describe(self, options: BenchOptions, target: str = "") -> str:
        """The run in one line for the status bar: backend, sink, amount, size, connections."""
        where = target or options.target or ""
        sink = f"→ {where}" if where else "→ local sink"
        if options.messages is not None and options.duration is not None:
            amount = f"{options.messages:,} msgs or {options.duration:g} s"
        elif options.messages is not None:
            amount = f"{options.messages:,} msgs"
        else:
            amount = f"{options.duration or DEFAULT_DURATION:g} s"
        parts = [f"{self.backend} {sink}", amount, format_size(options.body_size), f"{options.concurrency:,} conns"]
        if options.rate is not None:
            parts.append(f"≤{options.rate:,.0f}/s")
        if options.workers > 1:
            parts.append(f"{options.workers} workers")
        return " · ".join(parts)


def field_for_error(message: str) -> str | None:
    """The form field an error message is about (it starts with the field's flag), if any."""
    for name, flag in FIELD_FLAGS.items():
        if message.startswith(flag):
            return name
    return None


def open_fds(pid: int | None) -> int | None:
    """Descriptors open in a process and its children (``/proc/PID/fd`` via psutil); None when unknown.

    Compared with the hard ``nofile`` limit this says how close a job is to
    EMFILE, which the system-wide ``fs.file-nr`` does not.
    """
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        return sum(process.num_fds() for process in (root, *root.children(recursive=True)))
    except psutil.Error:
        return None


def hard_nofile() -> int | None:
    """The hard open-file limit the started jobs inherit (they raise their soft limit to it)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else hard


# --- derived figures -----------------------------------------------------------------


def effective_duration(options: BenchOptions) -> float | None:
    """The deadline the generator works to: as given, or its default without a message count."""
    if options.duration is not None:
        return options.duration
    return DEFAULT_DURATION if options.messages is None else None


def progress_of(sent: int, messages: int | None, seconds: float, duration: float | None) -> float:
    """How far the run is, 0 to 1: by count, by time, or whichever bound is nearer its end."""
    shares = []
    if messages:
        shares.append(sent / messages)
    if duration:
        shares.append(seconds / duration)
    return min(1.0, max(shares, default=0.0))


def eta_of(sent: int, messages: int | None, rate: float | None, seconds: float, duration: float | None) -> float | None:
    """Seconds left: at the current rate to the message count, or to the deadline, whichever comes first."""
    if messages and sent >= messages:
        return 0.0
    left = []
    by_count = eta_seconds(sent, messages, rate)
    if by_count is not None:
        left.append(by_count)
    if duration:
        left.append(max(0.0, duration - seconds))
    return min(left) if left else None


def trend(values: Sequence[float], span: int = TREND_SPAN, threshold: float = TREND_THRESHOLD) -> str:
    """``rising``, ``falling`` or ``steady``: the mean of the last ``span`` values against the ``span`` before.

    Empty until there are ``2 * span`` values; a zero baseline is steady
    unless the recent mean is above zero.
    """
    if len(values) < 2 * span:
        return ""
    recent = sum(values[-span:]) / span
    before = sum(values[-2 * span : -span]) / span
    if before <= 0:
        return "rising" if recent > 0 else "steady"
    change = (recent - before) / before
    if change > threshold:
        return "rising"
    if change < -threshold:
        return "falling"
    return "steady"


# --- wording ---------------------------------------------------------------------------


def format_count(value: int | None) -> str:
    """``1,234``; a dash when unknown."""
    return f"{value:,}" if value is not None else DASH


def format_rate(value: float | None) -> str:
    """Messages per second: whole numbers from 100 up, one decimal below; a dash when unknown."""
    if value is None:
        return DASH
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def format_mmh(value: float | None) -> str:
    """MMH to the precision KumoMTA publishes (``4.034``); fewer decimals for big local figures."""
    if value is None:
        return DASH
    if value >= 100:
        return f"{value:,.1f}"
    if value >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_ms(value: float | None) -> str:
    """Milliseconds to three significant figures (``0.412``, ``3.02``, ``41.2``, ``1,204``)."""
    if value is None:
        return DASH
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.001 else "0"


def format_eta(seconds: float | None) -> str:
    """``0:07``, ``12:30``, ``1:02:03``; a dash when unknown."""
    if seconds is None:
        return DASH
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def format_size(value: int) -> str:
    """Message size as the form takes it: ``1 KB``, ``100 KB``, ``1.5 MB``, ``512 B`` (decimal units)."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1000)):
        if value >= scale:
            shown = value / scale
            return f"{shown:g} {unit}" if shown == int(shown) else f"{shown:.1f} {unit}"
    return f"{value} B"


def format_bytes(value: float | None) -> str:
    """Memory in binary units (``15.6 GiB``, ``512 MiB``)."""
    if value is None:
        return DASH
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def format_bytes_rate(value: float | None) -> str:
    """Network throughput in decimal units per second (``12.3 MB/s``), as link speeds are quoted."""
    if value is None:
        return DASH
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B/s"


def format_compact(value: int | None) -> str:
    """A large count in four characters or so (``2,340``, ``12.3k``, ``1.0M``, ``9.2E``)."""
    if value is None:
        return DASH
    if value < 10_000:
        return f"{value:,}"
    for unit, scale in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return str(value)


BAR_LEVELS = " ▁▂▃▄▅▆▇█"


def cpu_bars(percents: Sequence[float], width: int = 64) -> str:
    """One block character per core, its height the core's load; cores are averaged
    in groups when there are more than ``width``, so 192 cores still fit a line."""
    if not percents:
        return ""
    group = math.ceil(len(percents) / max(width, 1))
    loads = [sum(percents[i : i + group]) / len(percents[i : i + group]) for i in range(0, len(percents), group)]
    top = len(BAR_LEVELS) - 1
    return "".join(BAR_LEVELS[min(top, max(0, math.ceil(load / 100 * top)))] for load in loads)


SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters scaled from zero to their maximum, newest on the right.

    Plain text in one style: Textual's ``Sparkline`` writes a styled segment
    per bar (about 35 bytes a cell on every update), which over a slow SSH
    link is most of what a live screen sends; this costs 3 bytes a cell.
    """
    if width <= 0:
        return ""
    shown = list(values)[-width:]
    top = max(shown, default=0.0)
    last = len(SPARK_LEVELS) - 1
    bars = "".join(
        SPARK_LEVELS[min(last, max(0, round(value / top * last)))] if top > 0 else SPARK_LEVELS[0] for value in shown
    )
    return bars.rjust(width)


def trend_arrow(direction: str) -> str:
    """An arrow for a trend word (empty when there is no trend yet)."""
    return {"rising": "↗", "falling": "↘", "steady": "→"}.get(direction, "")


# --- one tick --------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveFigures:
    """Everything the live panes show after one reading, already derived."""

    elapsed: float
    """Seconds since the run started (sink start included)."""
    target: str
    sent: int = 0
    failed: int = 0
    rate: float | None = None
    """Generator messages per second over the last few seconds."""
    mmh: float | None = None
    progress: float = 0.0
    eta: float | None = None
    gen_connections: int | None = None
    rate_series: tuple[float, ...] = ()
    """Generator msgs/s per reading, oldest first, at most :data:`SERIES_POINTS`."""
    received: int | None = None
    """Messages the sink took (None when the run has no sink of its own)."""
    rejected: int | None = None
    sink_rate: float | None = None
    sink_connections: int | None = None
    latency: Mapping[str, float] = field(default_factory=dict)
    """Generator transaction latency in ms (``p50``, ``p95``, ``p99``), over the run so far."""
    p99_series: tuple[float, ...] = ()
    latency_trend: str = ""
    host: HostStats | None = None
    listen_overflows: int = 0
    """Connections dropped for a full accept queue since the run started."""
    gen_cpu: ProcessCpu | None = None
    gen_fds: int | None = None
    """Descriptors the generator's processes hold now (local jobs only)."""
    nofile: int | None = None
    ports: int | None = None
    """Ephemeral ports ``ip_local_port_range`` allows, to put TIME_WAIT against."""
    hints: tuple[Hint, ...] = ()
    """Every hint seen in this run, warnings first, then in the order first seen, each in its latest wording."""
    active_hints: frozenset[str] = frozenset()
    """Ids of the hints whose symptom shows in this reading."""


SamplerFactory = Callable[[str | None], HostSampler]
CpuReader = Callable[[int | None], ProcessCpu | None]
FdReader = Callable[[int | None], int | None]


def _target_host(target: str) -> str:
    host = target.rpartition(":")[0] if ":" in target else target
    return host.strip("[]") or "127.0.0.1"


class LiveWatch:
    """Turns a running benchmark's readings into :class:`LiveFigures`, one tick at a time.

    :meth:`tick` is called from the benchmark's worker thread with the fresh
    samples of each poll; it reads the host and the generator's CPU there
    too, evaluates the hint rules, and moves new job log lines into a
    bounded buffer that the screen drains with :meth:`take_log` (so a
    replaced, never-delivered tick loses no line).
    """

    def __init__(
        self,
        options: BenchOptions,
        parameters: Mapping[str, str],
        *,
        sampler: SamplerFactory = HostSampler,
        cpu_reader: CpuReader = process_cpu,
        fd_reader: FdReader = open_fds,
        nofile: int | None = None,
        points: int = SERIES_POINTS,
        log_keep: int = LOG_KEEP,
    ) -> None:
        """Watch a run of ``options`` on a host whose parameters were ``parameters`` at start.

        Args:
            options: the run's request (message count, duration, workers).
            parameters: the profile's kernel values at start, for the hint rules.
            sampler: builds the host sampler for the interface toward the target.
            cpu_reader: CPU of a process tree by PID (a fixed one for screenshots).
            fd_reader: open descriptors of a process tree by PID.
            nofile: the jobs' hard open-file limit, when known.
            points: readings kept per sparkline.
            log_keep: job log lines kept until the screen takes them.
        """
        self.options = options
        self.parameters = dict(parameters)
        self.make_sampler = sampler
        self.cpu_reader = cpu_reader
        self.fd_reader = fd_reader
        self.nofile = nofile
        self.sampler: HostSampler | None = None
        self.host_at_start: HostStats | None = None
        self.generator: Sample | None = None
        self.sink: Sample | None = None
        self.gen_origin: float | None = None
        self.rates: deque[float] = deque(maxlen=points)
        self.p99s: deque[float] = deque(maxlen=points)
        self.hints: dict[str, Hint] = {}
        self._cursors: dict[str, int] = {}
        self._log: deque[str] = deque(maxlen=log_keep)
        self._log_lock = threading.Lock()

    def tick(self, bench: Benchmark, fresh: Sequence[Sample]) -> LiveFigures:
        """The figures after ``fresh`` (one poll's samples); reads the host once."""
        for sample in fresh:
            if sample.role == "generator":
                if self.generator is None or sample.elapsed > self.generator.elapsed:
                    if self.gen_origin is None:
                        self.gen_origin = sample.elapsed
                    self.generator = sample
                    self.rates.append(sample.rate or 0.0)
                    p99 = (sample.latency_ms or {}).get("p99")
                    if p99 is not None:
                        self.p99s.append(p99)
            elif self.sink is None or sample.elapsed > self.sink.elapsed:
                self.sink = sample
        host = self._read_host(bench.target)
        self._collect_logs(bench)
        gen, sink = self.generator, self.sink
        gen_job = bench.generator
        gen_pid = gen_job.pid if gen_job is not None and not gen_job.launcher.remote else None
        gen_cpu = self.cpu_reader(gen_pid)
        failures = gen_job.failures_so_far() if gen_job is not None else {}
        found = evaluate(
            HintInputs(
                generator=gen,
                sink=sink,
                host=host,
                host_at_start=self.host_at_start,
                parameters=self.parameters,
                failures=failures,
                generator_cpu=gen_cpu,
                generator_workers=self.options.workers,
                nofile_limit=self.nofile,
            )
        )
        for hint in found:
            self.hints[hint.id] = hint
        sent = gen.count if gen is not None else 0
        seconds = gen.elapsed - (self.gen_origin or 0.0) if gen is not None else 0.0
        duration = effective_duration(self.options)
        latency = dict(gen.latency_ms or {}) if gen is not None else {}
        overflows = 0
        if host is not None and self.host_at_start is not None:
            overflows = max(0, host.listen_overflows - self.host_at_start.listen_overflows)
        elapsed = max((s.elapsed for s in (gen, sink) if s is not None), default=0.0)
        p99_series = tuple(self.p99s)
        return LiveFigures(
            elapsed=elapsed,
            target=bench.target,
            sent=sent,
            failed=gen.failed if gen is not None else 0,
            rate=gen.rate if gen is not None else None,
            mmh=mmh(gen.rate) if gen is not None and gen.rate is not None else None,
            progress=progress_of(sent, self.options.messages, seconds, duration),
            eta=eta_of(sent, self.options.messages, gen.rate if gen else None, seconds, duration) if gen else None,
            gen_connections=gen.connections if gen is not None else None,
            rate_series=tuple(self.rates),
            received=sink.count if sink is not None else None,
            rejected=sink.failed if sink is not None else None,
            sink_rate=sink.rate if sink is not None else None,
            sink_connections=sink.connections if sink is not None else None,
            latency=latency,
            p99_series=p99_series,
            latency_trend=trend(p99_series),
            host=host,
            listen_overflows=overflows,
            gen_cpu=gen_cpu,
            gen_fds=self.fd_reader(gen_pid),
            nofile=self.nofile,
            ports=port_range_width(self.parameters),
            hints=tuple(sorted(self.hints.values(), key=lambda hint: hint.severity != "warn")),
            active_hints=frozenset(hint.id for hint in found),
        )

    def _read_host(self, target: str) -> HostStats | None:
        """One host reading; the first one is the baseline for counters that only grow."""
        if self.sampler is None:
            self.sampler = self.make_sampler(interface_for(_target_host(target)) if target else None)
        stats = self.sampler.sample()
        if self.host_at_start is None:
            self.host_at_start = stats
        return stats

    def _collect_logs(self, bench: Benchmark) -> None:
        for name, job in (("gen", bench.generator), ("sink", bench.sink)):
            if job is None:
                continue
            cursor, lines = job.log_since(self._cursors.get(name, 0))
            self._cursors[name] = cursor
            if lines:
                with self._log_lock:
                    self._log.extend(f"{name:<4} │ {line}" for line in lines)

    def take_log(self) -> list[str]:
        """Job log lines not yet shown, oldest first (called from the UI thread)."""
        with self._log_lock:
            lines = list(self._log)
            self._log.clear()
        return lines


def live_benchmark(plan: BenchPlan) -> Benchmark:
    """The run a live view drives: the core's, on this machine, with memory bounds reached within minutes.

    It keeps :data:`LIVE_SERIES_LIMIT` samples per role and
    :data:`LIVE_LOG_LINES` output lines per job, so a long run costs the app
    no more memory than a short one.
    """
    return Benchmark(
        plan,
        series_limit=LIVE_SERIES_LIMIT,
        sink_launcher=Launcher(log_lines=LIVE_LOG_LINES),
        generator_launcher=Launcher(log_lines=LIVE_LOG_LINES),
    )


@dataclass(frozen=True)
class BenchSource:
    """Where a live view's runs and readings come from.

    The app uses the real core (the default); screenshots and snapshot tests
    pass a scripted benchmark and fixed host readings, so the live screen
    looks the same on every machine.
    """

    benchmark: Callable[[BenchPlan], Benchmark] = live_benchmark
    """Builds the run for a plan (started by :func:`kumotui.benchmark.run_and_record`)."""
    backends: Callable[[], list[str]] = available_backends
    """The backends installed here."""
    sampler: SamplerFactory = HostSampler
    cpu_reader: CpuReader = process_cpu
    fd_reader: FdReader = open_fds
    nofile: Callable[[], int | None] = hard_nofile


def default_backend(found: Sequence[str]) -> str:
    """The backend ``--backend auto`` picks among ``found``: kumomta when installed, else builtin."""
    return "kumomta" if "kumomta" in found else "builtin"


# --- the end of a run ---------------------------------------------------------------------


def summary_lines(outcome: BenchOutcome, cpus: int) -> list[str]:
    """The summary card: counts, the rate in MMH, the sink's own count, and KumoMTA's figures for scale."""
    record = outcome.record
    gen, sink = outcome.generator, outcome.sink
    lines = []
    state = "stopped early, partial counts" if outcome.interrupted else "finished"
    lines.append(f"Run {record.id} {state} · saved (h lists every run)")
    if gen is None:
        lines.append("The generator left no summary: see the job log (l).")
        return lines
    counted = f"{gen.count:,} sent · {gen.failed:,} failed · {gen.elapsed:.1f} s"
    if sink is not None:
        counted += f" · sink received {sink.count:,}"
    lines.append(counted)
    rate = f"{format_rate(gen.msgs_per_s)} msgs/s = {format_mmh(gen.mmh)} MMH"
    p99 = gen.latency_p99_ms
    if p99 is not None:
        rate += f" · p99 {format_ms(p99)} ms"
    lines.append(rate)
    lines.append(f"KumoMTA published ({cpus} CPUs nearest): {versus_published(gen.mmh, cpus)}")
    if record.config.body_size not in (None, PUBLISHED_BODY_SIZE):
        size = record.config.body_size or 0
        lines.append(f"Published runs sent {format_size(PUBLISHED_BODY_SIZE)} messages; this one {format_size(size)}.")
    if not gen.ok and gen.reason:
        lines.append(f"Not ok: {gen.reason}")
    return lines
