"""A benchmark run: choose a backend, start a sink and a generator as jobs,
sample both on one clock, stop everything, and keep the record.

This is the one place the CLI's ``bench`` and the UI's benchmark screen
start runs from. It owns no protocol knowledge (that lives in the engines and
the backend parsers) and no process handling (that lives in
:mod:`kumotui.backends`): it only sequences jobs and collects their samples.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kumotui.backends import resolve_backend
from kumotui.backends.builtin import BuiltinGenJob, BuiltinSinkJob, sink_args
from kumotui.backends.job import Job
from kumotui.backends.kumomta.kumod import KumodSinkJob
from kumotui.backends.kumomta.policy import write_sink_policy
from kumotui.backends.kumomta.traffic_gen import TrafficGenJob, traffic_gen_command
from kumotui.backends.postfix import PostfixSinkJob, PostfixSourceJob
from kumotui.backends.process import Launcher
from kumotui.backends.samples import Sample, Summary, thin_series
from kumotui.bench.options import BenchOptions
from kumotui.bench.records import RunConfig, RunRecord, new_run, save_run
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts

SAMPLE_INTERVAL = 0.5
"""Seconds between readings: 2 Hz, what the live panes refresh at."""
SERIES_LIMIT = 7200
"""Samples kept in memory per run (an hour at 2 Hz per role); older ones are thinned."""


@dataclass(frozen=True)
class BenchPlan:
    """What to run: the generator's options plus backend and where each side runs."""

    options: BenchOptions
    backend: str = "builtin"
    sink_listen: str | None = None
    """Where a started sink listens (default: a free loopback port for builtin,
    KumoMTA's 2026 for kumomta)."""
    tempfail_percent: float = 0.0
    permfail_percent: float = 0.0
    kumod_user: str = "kumod"
    """The account kumod drops to when started as root (``--user``)."""
    sink_http_port: int = 8002
    """kumod's HTTP listener (liveness and /metrics); KumoMTA's sink uses 8002."""
    profile: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    """The profile's parameters' values at start, for the run record."""


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
    ) -> None:
        """Prepare a run of ``plan``; nothing starts before :meth:`start`.

        ``series_limit`` bounds the samples kept in memory per role (once
        both roles together hold twice as many, each is thinned evenly to
        it); the app's live screen passes a small one so that its memory
        stays flat over long runs. ``sink`` is an already started (and
        ready) sink job to count and stop with the run, when the plan sends
        to its ``target`` instead of starting one (the guided setup's sink).
        """
        self.plan = replace(plan, backend=resolve_backend(plan.backend))
        self.series_limit = series_limit
        self.sink_launcher = sink_launcher or Launcher()
        self.generator_launcher = generator_launcher or Launcher()
        self.sink: Job | None = sink
        self.generator: Job | None = None
        self.series: list[Sample] = []
        self.target = plan.options.target or ""
        self._stop = threading.Event()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the sink (if asked), wait for it, then start the generator."""
        self.plan.options.validate()
        self.started_at = time.monotonic()
        try:
            if self.plan.options.local_sink:
                self.sink = self.make_sink()
                self.sink.start().wait_ready()
                self.target = self._sink_target()
            if self.sink is not None:
                self.poll()  # the sink's baseline, so its summary spans exactly the generator's work
            self.generator = self._make_generator(self.target)
            self.generator.start().wait_ready()
        except BaseException:
            self.stop()
            raise

    def poll(self) -> list[Sample]:
        """One reading of each job, kept in the series and returned."""
        fresh = []
        for job in (self.generator, self.sink):
            if job is None:
                continue
            sample = job.reading()
            if sample is not None:
                sample = replace(sample, elapsed=round(time.monotonic() - self.started_at, 3))
                fresh.append(sample)
        self.series.extend(fresh)
        if len(self.series) > 2 * self.series_limit:
            self.series = thin_series(self.series, self.series_limit)
        return fresh

    @property
    def done(self) -> bool:
        """The generator has finished (or a stop was asked for)."""
        return self._stop.is_set() or (self.generator is not None and self.generator.finished)

    def request_stop(self) -> None:
        """Ask a running :meth:`run` to stop early (from any thread)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop every job by PID, generator first. Idempotent."""
        for job in (self.generator, self.sink):
            if job is not None:
                job.stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

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
        if self.generator is not None and not self.generator.finished:
            self.generator.stop()
        if self.generator is not None:
            self.generator.process.drained(2.0)
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
        gen_summary = self.generator.summary(self.series) if self.generator else None
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
        )
        record = replace(
            new_run(config, host, self.plan.parameters, profile=self.plan.profile),
            series=tuple(self.series),
            generator=gen_summary,
            sink=sink_summary,
        )
        return BenchOutcome(record, self.target, interrupted)

    # -- jobs per backend ----------------------------------------------------------

    def _sink_target(self) -> str:
        assert self.sink is not None
        port = getattr(self.sink, "port", 0)
        host = "127.0.0.1"
        launcher_host = getattr(self.sink_launcher, "host", None)
        if launcher_host is not None:
            host = launcher_host.address
        return f"{host}:{port}"

    def _listen(self, default_port: int) -> tuple[str, int]:
        listen = self.plan.sink_listen or f"127.0.0.1:{default_port}"
        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            raise KumotuiError(f"--listen {listen!r}: expected ADDR:PORT")
        return host.strip("[]") or "0.0.0.0", int(port)

    def make_sink(self) -> Job:
        """The sink job for this plan's backend (not started)."""
        backend, options = self.plan.backend, self.plan.options
        if backend == "builtin":
            host, port = self._listen(0)
            args = sink_args(
                f"{host}:{port}",
                options.sink_workers,
                tempfail_percent=self.plan.tempfail_percent,
                permfail_percent=self.plan.permfail_percent,
            )
            return BuiltinSinkJob(self.sink_launcher, args)
        if backend == "kumomta":
            from kumotui.backends import kumomta

            host, port = self._listen(kumomta.SINK_PORT)
            kumo = kumomta.find_kumomta()
            self._tempdir = tempfile.TemporaryDirectory(prefix="kumotui-sink-", dir="/tmp")
            owner = self.plan.kumod_user if os.geteuid() == 0 else None
            policy = write_sink_policy(
                Path(self._tempdir.name), port=port, http_port=self.plan.sink_http_port, listen_host=host, owner=owner
            )
            return KumodSinkJob(
                self.sink_launcher,
                str(kumo.kumod),
                policy,
                port=port,
                http_port=self.plan.sink_http_port,
                user=self.plan.kumod_user,
            )
        from kumotui.backends import postfix

        host, port = self._listen(2026)
        tools = postfix.find_postfix_tools()
        argv = postfix.smtp_sink_command(tools, f"{host}:{port}", concurrency=options.concurrency)
        return PostfixSinkJob(
            self.sink_launcher, argv, tools.environ(), (host if host != "0.0.0.0" else "127.0.0.1", port)
        )

    def _make_generator(self, target: str) -> Job:
        backend, options = self.plan.backend, self.plan.options
        if backend == "builtin":
            return BuiltinGenJob(self.generator_launcher, options.gen_args(target))
        if backend == "kumomta":
            from kumotui.backends import kumomta

            kumo = kumomta.find_kumomta()
            argv = traffic_gen_command(
                kumo.traffic_gen,
                target=target,
                concurrency=options.concurrency,
                messages=options.messages,
                duration=int(options.duration) if options.duration else None,
                body_size=options.body_size,
                keep_going=bool(self.plan.tempfail_percent or self.plan.permfail_percent),
            )
            return TrafficGenJob(self.generator_launcher, argv, messages=options.messages, body_size=options.body_size)
        from kumotui.backends import postfix

        tools = postfix.find_postfix_tools()
        if options.messages is None:
            raise KumotuiError("--backend postfix needs --messages (smtp-source sends a fixed count)")
        argv = postfix.smtp_source_command(
            tools, target, concurrency=options.concurrency, messages=options.messages, body_size=options.body_size
        )
        return PostfixSourceJob(
            self.generator_launcher, argv, tools.environ(), messages=options.messages, body_size=options.body_size
        )


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
