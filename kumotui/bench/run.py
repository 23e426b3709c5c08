"""A benchmark run: choose a backend, start a sink and a generator as jobs,
sample both on one clock, stop everything, and keep the record.

This is the one place the CLI's ``bench``, the app's benchmark screen and
the guided setup prepare (:func:`prepare_plan`) and run (:func:`run_and_record`)
benchmarks from. It owns no protocol knowledge (that lives in the engines and
the backend parsers) and no process handling (that lives in
:mod:`kumotui.backends`): it only sequences jobs and collects their samples.
"""

from __future__ import annotations

import atexit
import math
import secrets
import shlex
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kumotui.backends import Backend, SinkRequest, resolve
from kumotui.backends.builtin import BuiltinGenJob, BuiltinSinkJob, EngineJob
from kumotui.backends.job import Job
from kumotui.backends.process import Launcher
from kumotui.backends.samples import Role, Sample, Summary, thin_series
from kumotui.bench.backpressure import DomainPushback, domain_pushback
from kumotui.bench.delivery import (
    COUNT_LEVEL,
    SAME_HOST,
    Clocks,
    Delivery,
    Probe,
    account,
    compare_clocks,
    counted,
    union,
)
from kumotui.bench.measure import measure
from kumotui.bench.mta import MtaView, MtaWatcher, watcher_for
from kumotui.bench.options import BenchOptions
from kumotui.bench.records import HostEntry, RunConfig, RunRecord, RunRedirect, new_run, save_run
from kumotui.bench.route import probe_ids, probe_route
from kumotui.bench.senders import SenderResult, merged_sample, merged_summary, share
from kumotui.bench.watched import WatchedSink
from kumotui.errors import KumotuiError
from kumotui.hosts import Host, HostFacts
from kumotui.hosts.address import format_address, host_part, is_loopback, parse_address
from kumotui.hosts.local import LocalHost
from kumotui.settings import Settings
from kumotui.tuning.findings import parameter_values
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.redirect import Redirect, add_redirect, firewall_runner, plan_redirect, remove_redirect
from kumotui.tuning.sysctl import SysctlTree

_LIVE: weakref.WeakSet[Benchmark] = weakref.WeakSet()
"""Runs whose jobs may still be alive: stopped at interpreter exit if nothing else did."""


@atexit.register
def _stop_leftovers() -> None:
    """Last resort against orphans, for every face (CLI and app): stop every job of every live run."""
    for bench in list(_LIVE):
        bench.request_stop()
        bench.stop()


SAMPLE_INTERVAL = 0.5
"""Seconds between readings: 2 Hz, what the live panes refresh at."""
SERIES_LIMIT = 7200
"""Samples kept in memory per run (an hour at 2 Hz per role); older ones are thinned."""


@dataclass(frozen=True)
class BenchPlan:
    """What to run: the generator's options, the backend, and the sink to start (if any)."""

    options: BenchOptions
    backend: str = Backend.BUILTIN
    """A :class:`~kumotui.backends.Backend` name, or ``auto``."""
    sink: SinkRequest = field(default_factory=SinkRequest)
    """The sink to start when ``options.local_sink``; its port None means the
    backend's default (a free one for builtin, KumoMTA's 2026 otherwise)."""
    profile: str | None = None
    label: str = ""
    """A note saved with the run (``before tuning``), shown in the runs list."""
    parameters: dict[str, str] = field(default_factory=dict)
    """The profile's parameters' values at start, for the run record."""
    hosts: tuple[HostEntry, ...] = ()
    """Every host of the run with its roles, facts and kernel values at start (see
    :func:`kumotui.bench.placement.host_entries`); kept in the run record."""


@dataclass(frozen=True)
class RedirectSite:
    """Where a run's ``--redirect-port25`` rule goes: the MTA's host and the state dir that journals it."""

    host: Host
    state_dir: Path
    announce: Callable[[Redirect, str], None] = lambda rule, on: None
    """Called with the rule and the host's name just before it is written (the CLI shows it, as apply shows
    its plan; the app asks)."""

    @classmethod
    def on(cls, host: Host, settings: Settings, announce: Callable[[Redirect, str], None]) -> RedirectSite:
        """The rule on ``host``, journaled in the state dir the settings name, else that host's own."""
        return cls(host, settings.state_dir or host.default_state_dir(), announce)


@dataclass
class BenchOutcome:
    """The end of a run."""

    record: RunRecord
    target: str
    interrupted: bool = False

    @property
    def generator(self) -> Summary | None:
        """The generator's summary."""
        return self.record.generator

    @property
    def sink(self) -> Summary | None:
        """The sink's summary (None when no sink was started)."""
        return self.record.sink


class Benchmark:
    """One run's jobs and samples; safe to stop from another thread."""

    def __init__(
        self,
        plan: BenchPlan,
        *,
        sink_launcher: Launcher | None = None,
        generator_launcher: Launcher | None = None,
        series_limit: int = SERIES_LIMIT,
        sink: Job | None = None,
        generator_launchers: Sequence[Launcher] = (),
        redirect_site: RedirectSite | None = None,
        mta_host: Host | None = None,
    ) -> None:
        """Prepare a run of ``plan``; nothing starts before :meth:`start`.

        ``series_limit`` bounds the samples kept in memory per role (once
        both roles together hold twice as many, each is thinned evenly to
        it); the app's live screen passes a small one so that its memory
        stays flat over long runs. ``sink`` is an already started (and
        ready) sink job to count and stop with the run, when the plan sends
        to its ``target`` instead of starting one (the guided setup's sink).
        ``generator_launchers`` runs one generator on each (several hosts,
        built-in backend): the run's totals are shared between them
        (:func:`~kumotui.bench.senders.share`) and their readings merged.
        ``redirect_site``: where ``--redirect-port25`` puts its rule (default:
        this machine and its default state dir). ``mta_host``: the MTA under
        test's host (:func:`~kumotui.bench.placement.mta_host_of`), where its
        queue is read (Postfix's ``postqueue``) and its readings come from.
        """
        self.plan = replace(plan, backend=resolve(plan.backend))
        self.series_limit = series_limit
        self.sink_launcher = sink_launcher or Launcher()
        self.generator_launchers: list[Launcher] = list(generator_launchers) or [generator_launcher or Launcher()]
        self.generator_launcher = self.generator_launchers[0]
        if len(self.generator_launchers) > 1 and self.plan.backend != Backend.BUILTIN:
            raise KumotuiError(
                f"generators on {len(self.generator_launchers)} hosts need the builtin backend "
                f"(its counters and latency histograms merge exactly), not {self.plan.backend}"
            )
        messages = self.plan.options.messages
        hosts = len(self.generator_launchers)
        if messages is not None and messages < hosts:
            raise KumotuiError(f"--messages {messages}: at least one message per generator host ({hosts} hosts)")
        self.sink: Job | None = sink
        self.generators: list[Job] = []
        """One generator job per generator host, in the order of :attr:`generator_launchers`."""
        self.sender_samples: list[Sample | None] = []
        """Each generator host's latest reading, on the run's clock (the series holds their merge)."""
        self.failure: str | None = None
        """Why the run ended early on its own: a generator host ended without its summary."""
        self.series: list[Sample] = []
        self.target = plan.options.target or ""
        self._stop = threading.Event()
        self._stopped_at: float | None = None
        self.started_at = 0.0
        self.tag = secrets.token_hex(4)
        """This run's stamp tag: the sink counts only its own run's messages."""
        self.probe: Probe | None = None
        """The routing probe's result (a run through an MTA)."""
        self.drain_seconds = 0.0
        self._probe_baseline = 0
        self.mta: MtaWatcher | None = None
        """Reads the MTA under test's own figures, when it publishes any kumotui can read."""
        self.mta_at_end: MtaView | None = None
        """Its figures when the run ended (after the drain), for the record."""
        self.redirect_site = redirect_site
        self.mta_host = mta_host
        self.redirected: Redirect | None = None
        """The ``--redirect-port25`` rule while it is in place."""
        self.redirect_error: str | None = None
        """Why the rule could not be removed at the end (it is still journaled), if it could not."""
        self._unredirect: Callable[[], object] | None = None
        self.redirect_record: RunRedirect | None = None
        """The rule as the run record keeps it (set once it is written; ``removed`` filled in at the end)."""
        self.phase = "starting"
        """``starting``, ``probing`` (the route through the MTA), ``sending``, ``draining`` (the MTA's
        backlog), ``done``: what a live view says the run is doing."""

    @property
    def generator(self) -> Job | None:
        """The generator job: the first host's when generators run on several hosts."""
        return self.generators[0] if self.generators else None

    @generator.setter
    def generator(self, job: Job | None) -> None:
        self.generators = [job] if job is not None else []

    @property
    def sender_hosts(self) -> list[str]:
        """The generator hosts' names, in order (``local`` for this machine)."""
        return [launcher.name for launcher in self.generator_launchers]

    @property
    def several(self) -> bool:
        """Whether generators run on more than one host."""
        return len(self.generator_launchers) > 1

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the sink (if asked), wait for it, then start every generator together."""
        self.plan.options.validate()
        self.started_at = time.monotonic()
        _LIVE.add(self)
        try:
            options = self.plan.options
            if options.local_sink:
                self.sink = self.make_sink()
                self.sink.start().wait_ready()
                self.target = format_address(self.sink_launcher.address, self.sink.port)
            elif options.sink is not None:
                self.sink = WatchedSink(options.sink, options.running_sink_metrics or "").start()
                self.sink.wait_ready(timeout=10.0)
                self.target = options.sink
            through = options.through
            if through is not None and self.sink is None:  # a sink the run counts: started here, or watched
                raise KumotuiError(
                    "--through needs --local-sink or --sink: kumotui counts what the MTA relays at a sink"
                )
            if through is not None and self.sink is not None:
                self._refuse_the_sink_as_mta(through, self.sink)
            if through is not None and self.sink is not None and self.plan.options.redirect_port25:
                self._redirect(through)
            if through is not None and self.sink is not None:
                self.phase = "probing"
                self.probe = self._probe(through, self.sink)
                self.mta = self._mta_watcher(through, self.probe.mta_banner)
            if self.sink is not None:
                self.poll()  # the sink's baseline, so its summary spans exactly the generator's work
            self.generators = [
                self.make_generator(through or self.target_for(launcher), launcher, index)
                for index, launcher in enumerate(self.generator_launchers)
            ]
            self.sender_samples = [None] * len(self.generators)
            for job in self.generators:  # all launched before any is waited for: they start together
                job.start()
            for job in self.generators:
                job.wait_ready()
            self.phase = "sending"
        except BaseException:
            self.stop()
            raise

    # -- through an MTA under test ---------------------------------------------

    @property
    def stamped(self) -> bool:
        """Whether this run counts every message by its stamp (through an MTA, built-in tools, a sink it started)."""
        options = self.plan.options
        return options.through is not None and options.local_sink and self.plan.backend == Backend.BUILTIN

    def _probe(self, through: str, sink: Job) -> Probe:
        """The routing probe: the load starts only once the probes reached our sink through the MTA."""

        if not isinstance(sink, BuiltinSinkJob):  # count-level: the sink's own count must grow by the probes
            reading = sink.reading()
            self._probe_baseline = reading.count if reading is not None else 0

        def arrived_ids() -> list[list[int]]:
            if isinstance(sink, BuiltinSinkJob):
                return sink.stamps_so_far()[1]
            reading = sink.reading()
            count = (reading.count if reading is not None else 0) - self._probe_baseline
            return [[ident, ident + 1] for ident in probe_ids()[: max(0, count)]]

        return probe_route(
            through,
            self.target,
            self.tag,
            arrived_ids,
            timeout=self.plan.options.probe_timeout,
            stopped=self._stop.is_set,
        )

    def _redirect(self, through: str) -> None:
        """Send the MTA host's outbound port 25 to our sink (journaled first), before the probe proves it."""
        site = self.redirect_site or RedirectSite(LocalHost(), LocalHost().default_state_dir())
        mta = parse_address(through, 25)[0].strip("[]")
        rule = plan_redirect(self.target, "127.0.0.1" if mta == "localhost" else mta, site.host)
        run = firewall_runner(site.host)
        site.announce(rule, site.host.name)
        add_redirect(rule, site.host, site.state_dir, run)
        self.redirected = rule
        self.redirect_record = RunRedirect(
            host=site.host.name,
            rule=rule.describe(),
            tool="nftables" if rule.tool == "nft" else "iptables",
            commands=tuple(shlex.join(command) for command in rule.add_commands()),
            removed=False,
        )
        self._unredirect = lambda: remove_redirect(site.host, site.state_dir, run)

    def _remove_redirect(self) -> None:
        """Take the run's rule away (last, after the sink: until then port 25 reaches nothing real)."""
        undo, self._unredirect = self._unredirect, None
        if undo is None:
            return
        try:
            undo()
        except KumotuiError as error:
            self.redirect_error = str(error)
        self.redirected = None

    def _refuse_the_sink_as_mta(self, through: str, sink: Job) -> None:
        """``--through`` naming the sink itself would measure the sink and call it an MTA: refuse it."""
        host, port = parse_address(through, 25)
        sink_host = self.sink_launcher.address
        same_host = (
            host == sink_host or (is_loopback(host) and is_loopback(sink_host)) or sink_host in ("0.0.0.0", "::")
        )
        if port == sink.port and same_host and not self.sink_launcher.remote:
            raise KumotuiError(
                f"--through {through} is the sink itself ({self.target}): name the MTA under test, whose routing "
                "delivers to the sink"
            )

    def _mta_watcher(self, through: str, banner: str) -> MtaWatcher | None:
        """KumoMTA's /metrics, or a Postfix queue read on the MTA's host (over SSH for another one), or nothing."""
        options = self.plan.options
        host = self.mta_host
        if host is None and is_loopback(parse_address(through, 25)[0]):
            host = LocalHost()  # a Benchmark built without placed roles (scripts, tests)
        if host is None and not options.mta_metrics:
            return None
        return watcher_for(
            through,
            banner,
            host or LocalHost(),
            metrics=options.mta_metrics,
            postfix_config=options.mta_postfix_config,
        )

    def delivered_so_far(self) -> int | None:
        """Messages of the load the sink has got through the MTA (None when not a run through one)."""
        sink = self.sink
        if self.plan.options.through is None or sink is None:
            return None
        if isinstance(sink, BuiltinSinkJob) and self.stamped:
            return sink.stamps_so_far()[0]
        reading = sink.reading()
        return max(0, (reading.count if reading is not None else 0) - self._probe_baseline - len(probe_ids()))

    def target_for(self, launcher: Launcher) -> str:
        """Where a generator run by ``launcher`` sends: the run's target, except that a sink started on
        this machine is reached from another host at the address that host sees this machine at."""
        sink = self.sink
        if sink is None or self.sink_launcher.remote or not launcher.remote or not self.plan.options.local_sink:
            return self.target
        return format_address(launcher.home_address, sink.port)

    def peer_addresses(self) -> dict[str, str]:
        """Each host of the run (by name) and the address its benchmark traffic goes to or comes from.

        A host's network reading is of the interface toward that address, found on that host: a generator's
        toward what it sends to; the sink host's toward the first generator (toward its own address it would
        find loopback, and show none of the run's traffic).
        """
        through = self.plan.options.through
        peers: dict[str, str] = {}
        for launcher in self.generator_launchers:
            peers.setdefault(launcher.name, host_part(through or self.target_for(launcher)))
        sink, first = self.sink_launcher, self.generator_launchers[0]
        peers.setdefault(sink.name, first.address if first.remote else sink.home_address)
        if self.mta_host is not None:  # it delivers to the sink
            peers.setdefault(self.mta_host.name, host_part(self.target))
        return peers

    def drain(self, on_samples: Callable[[list[Sample]], None] | None, interval: float) -> None:
        """After the generator ended: keep reading until the sink has every message the MTA accepted,
        or the drain deadline, or a stop."""
        summary = self.generator_summary()
        injected = summary.count if summary is not None else 0
        started = time.monotonic()
        deadline = started + self.plan.options.drain_timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if (self.delivered_so_far() or 0) + self._bounced_so_far() >= injected:
                break
            fresh = self.poll()
            if on_samples is not None and fresh:
                on_samples(fresh)
            self._stop.wait(interval)
        self.drain_seconds = time.monotonic() - started

    def _bounced_so_far(self) -> int:
        """Messages of the load a Smart Sink refused for good (the MTA will not deliver them)."""
        sink = self.sink
        if not isinstance(sink, BuiltinSinkJob) or not self.stamped:
            return 0
        return int(sink.pushback_so_far().get("bounced_stamped", 0))

    def pushback(self) -> tuple[DomainPushback, ...]:
        """What a Smart Sink answered per recipient domain (empty without a responses file)."""
        if not isinstance(self.sink, BuiltinSinkJob):
            return ()
        return domain_pushback(self.sink.pushback_so_far())

    def delivery_latency(self) -> dict[str, float]:
        """End-to-end delivery latency so far (ms percentiles; empty unless messages are stamped)."""
        sink = self.sink
        return sink.delivery_latency() if self.stamped and isinstance(sink, BuiltinSinkJob) else {}

    def delivery(self, gen: Summary | None) -> Delivery | None:
        """What happened to every message (a run through an MTA), from both sides' final lines."""
        if self.plan.options.through is None or self.sink is None or gen is None:
            return None
        sink, generators = self.sink, self.generators
        if self.stamped and isinstance(sink, BuiltinSinkJob) and all(isinstance(g, BuiltinGenJob) for g in generators):
            stamped, delivered = sink.stamps_so_far()
            accepted = union(g.accepted_ids() for g in generators if isinstance(g, BuiltinGenJob))
            pushed = sink.pushback_so_far()
            return account(
                accepted,
                delivered,
                stamped,
                latency_ms=sink.delivery_latency(),
                clock=self._clocks(),
                drain_seconds=self.drain_seconds,
                probe=self.probe,
                deferred=pushed.get("ranges_deferred") or [],
                bounced=pushed.get("ranges_bounced") or [],
                deferrals=int(pushed.get("deferrals_stamped", 0)),
            )
        why = COUNT_LEVEL
        if isinstance(sink, WatchedSink):
            why = f"count-level only: the running {sink.kind} sink at {sink.address} was counted from its /metrics"
        return counted(
            gen.count, self.delivered_so_far() or 0, drain_seconds=self.drain_seconds, probe=self.probe, why=why
        )

    def _clocks(self) -> Clocks:
        """The sink's clock against the generators': one clock here, else measured over each host's link."""
        launchers = [self.sink_launcher, *self.generator_launchers]
        if not any(launcher.remote for launcher in launchers):
            return SAME_HOST
        try:
            measured = [(launcher.name, launcher.clock_offset()) for launcher in launchers]
        except (KumotuiError, OSError) as error:
            return compare_clocks(None, [], error=str(error))
        sink, *generators = [(name, offset.seconds, offset.uncertainty) for name, offset in measured]
        return compare_clocks(sink, generators)

    def _now(self) -> float:
        # Milliseconds, rounded down: a reading taken before the generator's launch
        # must never look as if it came after it (the window's base count).
        return math.floor((time.monotonic() - self.started_at) * 1000) / 1000

    def poll(self) -> list[Sample]:
        """One reading of each job, kept in the series and returned (several generators: their merge)."""
        fresh = []
        jobs: list[Job] = [] if self.several else list(self.generators)
        if self.several:
            merged = self._poll_senders()
            if merged is not None:
                fresh.append(merged)
        for job in [*jobs, *([self.sink] if self.sink is not None else [])]:
            sample = job.reading()
            if sample is not None:
                fresh.append(replace(sample, elapsed=self._now()))
        self._check_senders()
        self.series.extend(fresh)
        if len(self.series) > 2 * self.series_limit:
            self.series = thin_series(self.series, self.series_limit)
        return fresh

    def _poll_senders(self) -> Sample | None:
        """Each generator host's reading, kept per host, and their merge for the run's series."""
        now = self._now()
        for index, job in enumerate(self.generators):
            sample = job.reading()
            if sample is not None:
                self.sender_samples[index] = replace(sample, elapsed=now)
        histograms = [job.histogram() if isinstance(job, BuiltinGenJob) else None for job in self.generators]
        known = [s for s in self.sender_samples if s is not None]
        return merged_sample(known, histograms, now) if known else None

    def _check_senders(self) -> None:
        """A generator that ended without its summary (its SSH link dropped, it crashed) fails the run."""
        if self.failure is not None:
            return
        for job in self.generators:
            if isinstance(job, EngineJob) and job.finished and job.final is None:
                why = job.error or f"exited with status {job.process.returncode}"
                self.failure = f"the generator on {job.where} ended without its summary ({why})"
                return

    @property
    def done(self) -> bool:
        """Every generator has finished, one failed the run, or a stop was asked for."""
        if self._stop.is_set() or self.failure is not None:
            return True
        return bool(self.generators) and all(job.finished for job in self.generators)

    def request_stop(self) -> None:
        """Ask a running :meth:`run` to stop early (from any thread)."""
        if not self._stop.is_set():
            self._stopped_at = time.monotonic()
        self._stop.set()

    def generator_span(self) -> tuple[float, float]:
        """When the generators were launched and when the last exited (or the stop was asked), on the run's clock."""
        if not self.generators:
            return 0.0, 0.0
        launched = min(gen.started_at for gen in self.generators)
        exits = [gen.ended_at for gen in self.generators]
        last_exit = max(t for t in exits if t is not None) if all(t is not None for t in exits) else None
        ends = [t for t in (last_exit, self._stopped_at) if t is not None]
        ended = min(ends) if ends else time.monotonic()
        return launched - self.started_at, ended - self.started_at

    def stop(self) -> None:
        """Stop every job by PID, generators first, then remove a ``--redirect-port25`` rule. Idempotent."""
        for job in [*self.generators, *([self.sink] if self.sink is not None else [])]:
            job.stop()
        self._remove_redirect()
        _LIVE.discard(self)

    def sender_results(self) -> list[SenderResult]:
        """Each generator host's own result (after the run): its summary, or why it has none."""
        results = []
        for launcher, job in zip(self.generator_launchers, self.generators, strict=False):
            summary = job.summary(self.series) if not self.several else job.summary([])
            gen = job if isinstance(job, BuiltinGenJob) else None
            error = ""
            if summary is None:
                error = job.error or "ended without its summary (the link to its host dropped, or it crashed)"
            results.append(
                SenderResult(
                    host=launcher.name,
                    summary=summary,
                    unsent=gen.unsent() if gen is not None else None,
                    error=error,
                    latency_histogram=gen.histogram() if gen is not None and summary is not None else None,
                )
            )
        return results

    def generator_summary(self) -> Summary | None:
        """The run's generator summary: the one generator's, or every host's merged exactly."""
        if not self.several:
            gen = self.generator
            return gen.summary(self.series) if gen is not None else None
        return merged_summary(self.sender_results())

    def run(
        self, on_samples: Callable[[list[Sample]], None] | None = None, interval: float = SAMPLE_INTERVAL
    ) -> list[Sample]:
        """Sample until the generator finishes or :meth:`request_stop`; then one last reading."""
        next_tick = time.monotonic()
        while not self.done:
            fresh = self.poll()
            if on_samples is not None and fresh:
                on_samples(fresh)
            next_tick += interval
            self._stop.wait(max(0.0, next_tick - time.monotonic()))
        for gen in self.generators:
            if not gen.finished:
                gen.stop()
        for gen in self.generators:
            gen.process.drained(2.0)
        if self.plan.options.through is not None:
            self.phase = "draining"
            self.drain(on_samples, interval)
        self.phase = "done"
        if self.mta is not None:
            self.mta_at_end = self.mta.read()
        final = self.poll()
        if on_samples is not None and final:
            on_samples(final)
        return self.series

    def finish(self, host: HostFacts) -> BenchOutcome:
        """Stop everything, summarise both sides and build the run record."""
        interrupted = self._stop.is_set()
        if self.sink is not None:
            time.sleep(min(1.0, SAMPLE_INTERVAL))  # let the sink count the last messages
            self.poll()
        self.stop()
        if self.sink is not None:
            self.poll()  # a stopped engine's final line carries its exact totals
        gen_summary = self.generator_summary()
        sink_series = [s for s in self.series if s.role == "sink"]
        sink_summary = self.sink.summary(sink_series) if self.sink else None
        if sink_summary is not None and gen_summary is not None:
            sink_summary = _sink_timed_by_generator(sink_summary, gen_summary)
        options = self.plan.options
        config = RunConfig(
            backend=self.plan.backend,
            target=self.target,
            concurrency=options.concurrency,
            messages=options.messages,
            duration=options.duration,
            body_size=options.body_size,
            workers=options.workers,
            sink_workers=self.plan.sink.workers if options.local_sink else None,
            through=options.through,
            sink_metrics=options.running_sink_metrics,
        )
        launched, ended = self.generator_span()
        role: Role = "generator"
        if options.through:
            # Through an MTA what counts is what it delivered, and it delivers until its backlog
            # is drained: the sink's window and whole run end there, not when the generator did.
            role = "sink"
            ended += self.drain_seconds
        record = replace(
            new_run(config, host, self.plan.parameters, profile=self.plan.profile, label=self.plan.label),
            series=tuple(self.series),
            generator=gen_summary,
            sink=sink_summary,
            measurement=measure(self.series, launched=launched, ended=ended, role=role) if self.generator else None,
            stopped=interrupted,
            delivery=self.delivery(gen_summary),
            hosts=self.plan.hosts,
            generators=tuple(self.sender_results()),
            failure=self.failure or "",
            pushback=self.pushback(),
            mta=self.mta_at_end,
            redirect=self._redirect_outcome(),
        )
        return BenchOutcome(record, self.target, interrupted)

    def _redirect_outcome(self) -> RunRedirect | None:
        """The run's redirect for its record, once :meth:`stop` removed it (or could not)."""
        if self.redirect_record is None:
            return None
        error = self.redirect_error
        return replace(self.redirect_record, removed=error is None and self.redirected is None, error=error or "")

    # -- jobs, from the backend registry -------------------------------------------------

    def make_sink(self) -> Job:
        """The sink job the plan asks for (not started)."""
        request = replace(self.plan.sink, concurrency=self.plan.options.concurrency)
        elsewhere = [launcher.name for launcher in self.generator_launchers if launcher.remote]
        reached_by_generators = self.plan.options.through is None  # else the MTA reaches it, not them
        if elsewhere and reached_by_generators and not self.sink_launcher.remote and is_loopback(request.host):
            # Generators on other hosts cannot reach this machine's loopback: listen on every
            # interface (for this run only; each generator still checks its target's range).
            request = replace(request, host="::" if ":" in request.host else "0.0.0.0")
        if self.stamped:
            request = replace(request, stamps=self.tag)
        return Backend(self.plan.backend).impl.sink(self.sink_launcher, request)

    def make_generator(self, target: str, launcher: Launcher | None = None, index: int = 0) -> Job:
        """The generator job for ``target`` (not started): host ``index``'s share of the load, run by ``launcher``."""
        sink = self.plan.sink
        load = self.plan.options.load(target, keep_going=bool(sink.tempfail_percent or sink.permfail_percent))
        if self.stamped:
            load = replace(load, stamp=self.tag)
        load = share(load, len(self.generator_launchers), index)
        return Backend(self.plan.backend).impl.generator(launcher or self.generator_launcher, load)


def _sink_timed_by_generator(sink: Summary, generator: Summary) -> Summary:
    """The sink's rate over the generator's own clock when sampling cannot tell them apart.

    The sink is read every :data:`SAMPLE_INTERVAL`, so its busy period is
    known only to about that much at each end: for a short run that error
    dominates. A sink cannot take mail faster than it is sent, so when the two
    periods agree within the sampling error, the generator's precise elapsed
    time is the better clock.
    """
    if generator.elapsed <= 0 or abs(sink.elapsed - generator.elapsed) > 2 * SAMPLE_INTERVAL:
        return sink
    mb_bytes = int(sink.mb_per_s * sink.elapsed * 1e6) if sink.mb_per_s is not None else None
    return Summary.build(
        "sink",
        count=sink.count,
        failed=sink.failed,
        elapsed=generator.elapsed,
        bytes=mb_bytes,
        failures=sink.failures,
        ok=sink.ok,
        reason=sink.reason,
    )


def run_and_record(
    bench: Benchmark, host: HostFacts, state_dir: Path | None, on_samples: Callable[[list[Sample]], None] | None = None
) -> BenchOutcome:
    """Start, sample to the end (Ctrl+C stops early), summarise, save the record."""
    try:
        bench.start()
        try:
            bench.run(on_samples)
        except KeyboardInterrupt:
            bench.request_stop()
        outcome = bench.finish(host)
    finally:
        bench.stop()
    if state_dir is not None:
        save_run(state_dir, outcome.record)
    return outcome


def prepare_plan(
    settings: Settings,
    host: Host,
    options: BenchOptions,
    *,
    backend: str = "auto",
    sink: SinkRequest | None = None,
    label: str = "",
    hosts: tuple[HostEntry, ...] = (),
) -> tuple[BenchPlan, HostFacts]:
    """The plan for a run on ``host``, with the kernel values it starts from, and the host's facts.

    The one place a run is prepared, for the CLI, the benchmark screen and
    the guided setup alike: load the profile, read its parameters on the host
    (for the record, and for the hints), and the host's facts (a simulated
    tree's own, when ``settings`` point at one). ``hosts`` are every host's
    entries already read (:func:`kumotui.bench.placement.host_entries`): the
    first one's are then the run's headline facts and values, read once.
    """
    profile = load_profile(settings.profile)
    if hosts:
        first = hosts[0]
        parameters, facts = dict(first.parameters), first.facts
    else:
        tree = SysctlTree(settings.sysctl_root, host)
        parameters, facts = parameter_values(profile, tree), tree.facts()
    plan = BenchPlan(
        options,
        backend=backend,
        sink=sink or SinkRequest(),
        profile=profile.name,
        label=label,
        parameters=parameters,
        hosts=hosts,
    )
    return plan, facts
