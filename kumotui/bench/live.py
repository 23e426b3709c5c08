"""The live benchmark as plain data: each tick's figures, derived once for the app's panes.

The app's benchmark screen shows what this module computes. Nothing here
imports Textual, so every number on that screen (progress, ETA, MMH, the
latency trend, host rates, the hints) is derived once, here, and tested
without a terminal. A tick runs in the worker thread that drives the
:class:`~kumotui.bench.run.Benchmark`, so host readings and hint rules never
run on the UI's event loop; series and logs are bounded so a long run costs
the same memory as a short one.
"""

from __future__ import annotations

import resource
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from kumotui.backends import available
from kumotui.backends.process import Launcher
from kumotui.backends.samples import RateWindow, Sample, eta_seconds, mmh
from kumotui.bench.backpressure import pushback_line
from kumotui.bench.charts import Chart, Trail, cpu_curve_names, cpu_values
from kumotui.bench.hints import BACKLOG_READINGS, Hint, HintInputs, evaluate, host_hints, port_range_width
from kumotui.bench.hoststats import (
    HostReader,
    HostReaders,
    HostReading,
    HostSampler,
    HostStats,
    ProcessCpu,
    SamplerReader,
    interface_for,
    process_cpu,
    sampler_for,
)
from kumotui.bench.joblog import readable_line
from kumotui.bench.measure import seconds_between, warmup_for
from kumotui.bench.mta import MtaView
from kumotui.bench.options import BenchOptions
from kumotui.bench.placement import LOCAL, PlacedRoles
from kumotui.bench.records import HostEntry
from kumotui.bench.report import delivery_lines, headline, published_verdict, refused_text, what_was_measured
from kumotui.bench.run import Benchmark, BenchOutcome, BenchPlan
from kumotui.hosts import Host
from kumotui.hosts.address import host_part
from kumotui.text.format import format_ms

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


THROUGHPUT_TITLE = "msgs/s"
LATENCY_TITLE = "latency ms"
CPU_TITLE = "CPU % per core"
NO_THROUGHPUT = Chart(THROUGHPUT_TITLE, "msgs/s")
NO_LATENCY = Chart(LATENCY_TITLE, "ms")
NO_CPU = Chart(CPU_TITLE, "%", y_max=100.0)
DELIVERY_WINDOW = 3.0
"""Seconds of delivered counts a live delivery rate is taken over."""


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


# --- one tick --------------------------------------------------------------------------


@dataclass(frozen=True)
class HostView:
    """One host of the run in one tick, as its pane shows it."""

    name: str
    """As the run names it (``local`` for this machine)."""
    roles: tuple[str, ...]
    """``generator``, ``sink``, ``mta``: what runs there."""
    reading: HostReading
    """This tick's reading: stats, or why there are none, and who read them at what cost."""
    listen_overflows: int = 0
    """Connections this host dropped for a full accept queue since the run started."""
    ports: int | None = None
    """Ephemeral ports its ``ip_local_port_range`` allows (read at start), to put TIME_WAIT against."""
    nofile: int | None = None
    """The hard open-file limit of the jobs there (this process's here, the agent's account's there)."""
    gen_cpu: ProcessCpu | None = None
    """The generator's CPU, when it runs on this machine (a remote one's processes are not read)."""
    gen_fds: int | None = None
    """Descriptors the generator holds, when it runs on this machine."""
    sent: int | None = None
    """Messages this host's generator sent so far (None: no generator here)."""
    rate: float | None = None
    """This host's generator's msgs/s now."""
    failed: int = 0


@dataclass(frozen=True)
class LiveFigures:
    """Everything the live panes show after one reading, already derived."""

    elapsed: float
    """Seconds since the run started (sink start included)."""
    target: str
    sent: int = 0
    failed: int = 0
    rate: float | None = None
    """Generator messages per second now (over its last few seconds)."""
    mmh: float | None = None
    """:attr:`rate` in MMH."""
    steady_rate: float | None = None
    """Generator messages per second since its warm-up ended (None during the warm-up): the
    figure the run's headline will be, so far."""
    steady_mmh: float | None = None
    whole_rate: float | None = None
    """Generator messages per second over everything since kumotui launched it."""
    warmup: float = 0.0
    """Seconds of the generator's run treated as warm-up."""
    progress: float = 0.0
    eta: float | None = None
    gen_connections: int | None = None
    rate_series: tuple[float, ...] = ()
    """Generator msgs/s per reading, oldest first, at most :data:`SERIES_POINTS`."""
    received: int | None = None
    """Messages the sink took (None when the run has no sink of its own)."""
    received_skewed: bool = False
    """The sink's reading is newer than the generator's and counts more than it sent: show "≈"."""
    sink_refused: Mapping[str, int] = field(default_factory=dict)
    """The sink's refusal counters, each in its own unit (``rejected_mail``, ``rejected_rcpt``, ...)."""
    through: str | None = None
    """The MTA under test, when the run goes through one."""
    phase: str = ""
    """What the run is doing (:attr:`kumotui.bench.run.Benchmark.phase`)."""
    delivered: int | None = None
    """Through an MTA: messages of the load the sink has got (each once)."""
    in_mta: int | None = None
    """Through an MTA: accepted from the generator, not delivered yet (the MTA's backlog)."""
    mta: MtaView | None = None
    """Through an MTA: its own figures this tick (None when it publishes nothing kumotui reads)."""
    mta_source: str = ""
    """Where :attr:`mta` came from, or why there is none."""
    delivery_latency: Mapping[str, float] = field(default_factory=dict)
    """Through an MTA: end-to-end delivery latency so far, ms (``p50``, ``p95``, ``p99``, ``max``)."""
    pushback: str = ""
    """A Smart Sink's deferrals/bounces so far for its most pushed-back domains (:func:`pushback_line`)."""
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
    throughput_chart: Chart = NO_THROUGHPUT
    """Msgs/s over the run: sent, and delivered through the MTA (or the sink's count without one)."""
    latency_chart: Chart = NO_LATENCY
    """The generator's transaction latency p50 and p99 over the run."""
    cpu_chart: Chart = NO_CPU
    """CPU per core over the run (the busiest, average and least busy beyond a few cores)."""
    hosts: tuple[HostView, ...] = ()
    """Every host of the run, generators first, each with its own reading."""
    named_hosts: bool = False
    """Whether panes and hints name their host: the run spans several hosts, or runs on another one."""


SamplerFactory = Callable[[str | None], HostSampler]
ReadersFactory = Callable[[Mapping[str, Host], Mapping[str, str]], Sequence[HostReader]]
"""Builds one reader per open host (by name), given each host's peer: the address its run traffic goes to
or comes from (:meth:`Benchmark.peer_addresses`), whose interface that host's reading follows."""
CpuReader = Callable[[int | None], ProcessCpu | None]
FdReader = Callable[[int | None], int | None]


def _rate_between(first: Sample | None, last: Sample | None) -> float | None:
    """Messages per second between two readings of one side (None until a second has passed)."""
    if first is None or last is None:
        return None
    seconds = seconds_between(first, last)
    return (last.count - first.count) / seconds if seconds >= 1.0 else None


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
        hosts: Sequence[HostEntry] = (),
        readers: Callable[[Mapping[str, str]], Sequence[HostReader]] | None = None,
    ) -> None:
        """Watch a run of ``options`` on a host whose parameters were ``parameters`` at start.

        Args:
            options: the run's request (message count, duration, workers).
            parameters: the profile's kernel values at start, for the hint rules.
            sampler: builds this machine's sampler for the interface toward the target (without ``readers``).
            hosts: every host of the run (name, roles, kernel values at start); none: this machine alone.
            readers: builds one reader per host of ``hosts`` (in that order) at the first tick, given each
                host's peer address (its interface is the one toward it); None: ``sampler``.
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
        self.host_list: list[tuple[str, tuple[str, ...], Mapping[str, str]]] = [
            (entry.name, entry.roles, entry.parameters) for entry in hosts
        ] or [(LOCAL, ("generator", "sink"), self.parameters)]
        """Every host of the run (name, roles, kernel values at start), generators first; the first
        one's readings feed the CPU chart."""
        self.named = len(self.host_list) > 1 or self.host_list[0][0] != LOCAL
        """Whether hints and panes name their host (several hosts, or another one than this machine)."""
        self.make_readers = readers
        self.readers: HostReaders | None = None
        self.at_start: dict[str, HostStats] = {}
        """Each host's first reading: the base of counters that only grow (listen overflows)."""
        self.host_at_start: HostStats | None = None
        self.generator: Sample | None = None
        self.sink: Sample | None = None
        self.gen_origin: float | None = None
        self.warm_mark: Sample | None = None
        """The generator's first reading after its warm-up: where the steady rate counts from."""
        self.rates: deque[float] = deque(maxlen=points)
        self.p99s: deque[float] = deque(maxlen=points)
        self.throughput = Trail(("sent", "delivered" if options.through else "received"))
        self.latencies = Trail(("p50", "p99"))
        self.cpus: Trail | None = None
        """Made at the first host reading, when the number of cores is known."""
        self.delivery_rate = RateWindow(DELIVERY_WINDOW)
        self.hints: dict[str, Hint] = {}
        self.backlog: deque[int] = deque(maxlen=BACKLOG_READINGS)
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
        readings = self._read_hosts(bench)
        self._collect_logs(bench)
        gen, sink = self.generator, self.sink
        local_gen = next((job for job in bench.generators if not job.launcher.remote), None)
        gen_pid = local_gen.pid if local_gen is not None else None
        gen_cpu = self.cpu_reader(gen_pid)
        gen_fds = self.fd_reader(gen_pid)
        delivered = bench.delivered_so_far()
        if delivered is not None and gen is not None and fresh:
            self.backlog.append(max(0, gen.count - delivered))
        views = self._views(bench, readings, gen_cpu, gen_fds)
        found = self._hints(bench, views)
        host = views[0].reading.stats
        self.host_at_start = self.at_start.get(views[0].name)
        for hint in found:
            self.hints[hint.id] = hint
        sent = gen.count if gen is not None else 0
        seconds = gen.elapsed - (self.gen_origin or 0.0) if gen is not None else 0.0
        duration = effective_duration(self.options)
        launched = bench.generator_span()[0]
        warmup = warmup_for(duration or 0.0)
        if gen is not None and self.warm_mark is None and gen.elapsed - launched >= warmup:
            self.warm_mark = gen
        steady = _rate_between(self.warm_mark, gen)
        whole = sent / (gen.elapsed - launched) if gen is not None and gen.elapsed - launched > 0 else None
        latency = dict(gen.latency_ms or {}) if gen is not None else {}
        overflows = views[0].listen_overflows
        elapsed = max((s.elapsed for s in (gen, sink) if s is not None), default=0.0)
        p99_series = tuple(self.p99s)
        if fresh:
            self._chart(elapsed, gen, sink, delivered, host)
        return LiveFigures(
            elapsed=elapsed,
            target=bench.target,
            sent=sent,
            failed=gen.failed if gen is not None else 0,
            rate=gen.rate if gen is not None else None,
            mmh=mmh(gen.rate) if gen is not None and gen.rate is not None else None,
            steady_rate=steady,
            steady_mmh=mmh(steady) if steady is not None else None,
            whole_rate=whole,
            warmup=warmup,
            progress=progress_of(sent, self.options.messages, seconds, duration),
            eta=None if gen is None or bench.done else eta_of(sent, self.options.messages, gen.rate, seconds, duration),
            gen_connections=gen.connections if gen is not None else None,
            rate_series=tuple(self.rates),
            received=sink.count if sink is not None else None,
            received_skewed=sink is not None and sink.count > sent and delivered is None,
            through=bench.plan.options.through,
            phase=bench.phase,
            delivered=delivered,
            in_mta=max(0, sent - delivered) if delivered is not None else None,
            delivery_latency=bench.delivery_latency(),
            mta=bench.mta.read() if bench.mta is not None else None,
            mta_source=bench.mta.describe if bench.mta is not None else "the MTA publishes nothing kumotui can read",
            sink_refused=bench.sink.failures_so_far() if bench.sink is not None else {},
            pushback=pushback_line(bench.pushback()),
            sink_rate=sink.rate if sink is not None else None,
            sink_connections=sink.connections if sink is not None else None,
            latency=latency,
            p99_series=p99_series,
            latency_trend=trend(p99_series),
            host=host,
            listen_overflows=overflows,
            gen_cpu=gen_cpu,
            gen_fds=gen_fds,
            nofile=self.nofile,
            ports=views[0].ports,
            hints=tuple(sorted(self.hints.values(), key=lambda hint: hint.severity != "warn")),
            active_hints=frozenset(hint.id for hint in found),
            throughput_chart=Chart(THROUGHPUT_TITLE, "msgs/s", self.throughput.curves()),
            latency_chart=Chart(LATENCY_TITLE, "ms", self.latencies.curves()),
            cpu_chart=Chart(self._cpu_title(), "%", self.cpus.curves() if self.cpus else (), y_max=100.0),
            hosts=tuple(views),
            named_hosts=self.named,
        )

    def _sender_sample(self, bench: Benchmark, name: str, roles: Sequence[str]) -> Sample | None:
        """The generator reading a host's pane and hints use: its own generator's with several
        hosts, the run's (merged) one for the sink's host and for a run with one generator."""
        if "sink" in roles or not bench.several:
            return self.generator if ("generator" in roles or "sink" in roles) else None
        samples = dict(zip(bench.sender_hosts, bench.sender_samples, strict=False))
        return samples.get(name)

    def _views(
        self, bench: Benchmark, readings: Sequence[HostReading], gen_cpu: ProcessCpu | None, gen_fds: int | None
    ) -> list[HostView]:
        """Each host's reading, with what the run adds: its generator's count and rate, overflows since start."""
        own = dict(zip(bench.sender_hosts, bench.sender_samples, strict=False)) if bench.several else {}
        views = []
        for (name, roles, parameters), reading in zip(self.host_list, readings, strict=False):
            stats = reading.stats
            if stats is not None:
                self.at_start.setdefault(name, stats)
            base = self.at_start.get(name)
            overflows = max(0, stats.listen_overflows - base.listen_overflows) if stats and base else 0
            here = name == LOCAL and "generator" in roles
            sender = own.get(name) if bench.several else (self.generator if "generator" in roles else None)
            views.append(
                HostView(
                    name,
                    tuple(roles),
                    reading,
                    listen_overflows=overflows,
                    ports=port_range_width(parameters),
                    nofile=self.nofile if name == LOCAL else reading.nofile_hard,
                    gen_cpu=gen_cpu if here else None,
                    gen_fds=gen_fds if here else None,
                    sent=sender.count if sender is not None else (0 if "generator" in roles else None),
                    rate=sender.rate if sender is not None else None,
                    failed=sender.failed if sender is not None else 0,
                )
            )
        return views

    def _hints(self, bench: Benchmark, views: Sequence[HostView]) -> list[Hint]:
        """The rules on every host, each with that host's reading, values and generator; named by host
        when the run spans several (or runs on another machine), so Enter tunes the right one."""
        failures = {
            name: job.failures_so_far() for name, job in zip(bench.sender_hosts, bench.generators, strict=False)
        }
        found: list[Hint] = []
        for view, (name, roles, parameters) in zip(views, self.host_list, strict=False):
            inputs = HintInputs(
                generator=self._sender_sample(bench, name, roles),
                sink=self.sink if "sink" in roles else None,
                host=view.reading.stats,
                host_at_start=self.at_start.get(name),
                parameters=parameters,
                failures=failures.get(name, {}),
                generator_cpu=view.gen_cpu,
                generator_workers=self.options.workers,
                nofile_limit=view.nofile,
                backlog=tuple(self.backlog) if "sink" in roles else (),
                through=bench.plan.options.through is not None,
            )
            found += host_hints(name, roles, inputs) if self.named else evaluate(inputs)
        return sorted(found, key=lambda hint: hint.severity != "warn")

    def _chart(
        self, elapsed: float, gen: Sample | None, sink: Sample | None, delivered: int | None, host: HostStats | None
    ) -> None:
        """One point per curve for this reading: what came through the MTA when there is one, else the sink."""
        if delivered is not None:
            through = self.delivery_rate.add(elapsed, delivered)
        else:
            through = sink.rate if sink is not None else None
        self.throughput.add(elapsed, (gen.rate if gen is not None else None, through))
        latency = (gen.latency_ms or {}) if gen is not None else {}
        self.latencies.add(elapsed, (latency.get("p50"), latency.get("p99")))
        if host is not None and host.cpu_per_core:
            if self.cpus is None:
                self.cpus = Trail(cpu_curve_names(len(host.cpu_per_core)))
            self.cpus.add(elapsed, cpu_values(host.cpu_per_core))

    def _cpu_title(self) -> str:
        """The CPU chart's title; it names the host it is of when the run has several (the first one's)."""
        if not self.named or not self.host_list:
            return CPU_TITLE
        return f"{CPU_TITLE}, {self.host_list[0][0]}"

    def _read_hosts(self, bench: Benchmark) -> list[HostReading]:
        """One reading per host, all at once (one agent request per remote host); the readers are made
        at the first tick, when each host's peer (the sink's port, a remote sink's address) is known."""
        if self.readers is None:
            if self.make_readers is not None:
                self.readers = HostReaders(self.make_readers(bench.peer_addresses()))
            else:
                target = bench.target
                interface = interface_for(host_part(target)) if target else None
                self.readers = HostReaders([SamplerReader(LOCAL, self.make_sampler(interface))])
        return self.readers.read()

    def close(self) -> None:
        """Stop the readers' threads (the hosts themselves are closed by whoever opened them)."""
        if self.readers is not None:
            self.readers.close()

    def _collect_logs(self, bench: Benchmark) -> None:
        """Move the jobs' new output lines, made readable, into the buffer the screen drains."""
        seconds = max((s.elapsed for s in (self.generator, self.sink) if s is not None), default=0.0)
        for name, job in (("gen", bench.generator), ("sink", bench.sink)):
            if job is None:
                continue
            cursor, lines = job.log_since(self._cursors.get(name, 0))
            self._cursors[name] = cursor
            if lines:
                with self._log_lock:
                    # A job's output is another program's (maybe another host's) bytes:
                    # readable_line drops colours and shows any other control character escaped.
                    self._log.extend(readable_line(name, line, seconds) for line in lines)

    def take_log(self) -> list[str]:
        """Job log lines not yet shown, oldest first (called from the UI thread)."""
        with self._log_lock:
            lines = list(self._log)
            self._log.clear()
        return lines


def live_benchmark(plan: BenchPlan, placed: PlacedRoles | None = None) -> Benchmark:
    """The run a live view drives: the core's, on the hosts ``placed`` (this machine when None), with
    memory bounds reached within minutes.

    It keeps :data:`LIVE_SERIES_LIMIT` samples per role and
    :data:`LIVE_LOG_LINES` output lines per job (``placed`` is opened with
    that bound), so a long run costs the app no more memory than a short one.
    """
    if placed is None:
        return Benchmark(
            plan,
            series_limit=LIVE_SERIES_LIMIT,
            sink_launcher=Launcher(log_lines=LIVE_LOG_LINES),
            generator_launcher=Launcher(log_lines=LIVE_LOG_LINES),
        )
    return Benchmark(
        plan,
        series_limit=LIVE_SERIES_LIMIT,
        sink_launcher=placed.sink_launcher(),
        generator_launchers=placed.generator_launchers(),
        mta_host=placed.mta_host(),
    )


def agent_readers(hosts: Mapping[str, Host], peers: Mapping[str, str]) -> list[HostReader]:
    """One reader per open host: over its agent channel when remote, in-process for this machine; each
    follows the interface toward its peer (loopback when it has none)."""
    return [sampler_for(name, host, route_to=peers.get(name, "127.0.0.1")) for name, host in hosts.items()]


@dataclass(frozen=True)
class BenchSource:
    """Where a live view's runs and readings come from.

    The app uses the real core (the default); screenshots and snapshot tests
    pass a scripted benchmark and fixed host readings, so the live screen
    looks the same on every machine.
    """

    benchmark: Callable[[BenchPlan, PlacedRoles | None], Benchmark] = live_benchmark
    """Builds the run for a plan on its placed hosts (started by :func:`kumotui.benchmark.run_and_record`)."""
    backends: Callable[[], Sequence[str]] = available
    """The backends installed here."""
    readers: ReadersFactory = agent_readers
    """One reader per host of the run, read together once per tick."""
    cpu_reader: CpuReader = process_cpu
    fd_reader: FdReader = open_fds
    nofile: Callable[[], int | None] = hard_nofile


# --- the end of a run ---------------------------------------------------------------------


def summary_lines(outcome: BenchOutcome) -> list[str]:
    """The summary card: how it ended, what was measured, counts, the labelled rates, the sink's
    own count, and KumoMTA's published figures only where the run compares with them."""
    record = outcome.record
    gen, sink = outcome.generator, outcome.sink
    state = "stopped early, partial counts" if outcome.interrupted else str(record.status)
    label = f" ({record.label})" if record.label else ""
    lines = [f"Run {record.id}{label}: {state} · saved (h lists every run)", what_was_measured(record)]
    if gen is None:
        lines.append("The generator left no summary: see the job log (l).")
        return lines
    counted = f"{gen.count:,} sent · {gen.failed:,} failed"
    if sink is not None:
        counted += f" · sink received {sink.count:,}"
        refused = sum(sink.failures.values())
        if refused:
            counted += f" (refused: {refused_text(sink.failures)})"
    p99 = gen.latency_p99_ms
    if p99 is not None:
        counted += f" · p99 {format_ms(p99)} ms"
    lines.append(counted)
    lines += headline(record)
    lines += [f"{label.capitalize()}: {text}" for label, text in delivery_lines(record)]
    lines.append(published_verdict(record))
    if not gen.ok and gen.reason:
        lines.append(f"Not ok: {gen.reason}")
    return lines
