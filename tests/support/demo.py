"""A deterministic simulated host for screenshots, snapshot tests and UI tests.

Screenshots and snapshots must not change with the machine or the clock:
the host facts are fixed, the tree is a modern kernel's values written
under relative paths (so ``etc/sysctl.d/90-kumomta.conf`` reads the same in
every run), and the drop-in's "Written:" stamp is frozen. The benchmark
screen plays a scripted run (:class:`ScriptedBenchmark`) with scripted host
readings, and the runs screen reads two fixed records.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kumotui.backends.job import Job
from kumotui.backends.process import Launcher
from kumotui.backends.samples import Role, Sample, Summary
from kumotui.bench.hoststats import HostSampler, HostStats, ProcessCpu, SamplerReader
from kumotui.bench.live import BenchSource
from kumotui.bench.measure import measure
from kumotui.bench.records import RunConfig, RunRecord, load_run, new_run, save_run
from kumotui.bench.run import Benchmark, BenchOutcome, BenchPlan
from kumotui.hosts import HostFacts
from kumotui.settings import Settings
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.simulate import MODERN_KERNEL
from kumotui.tuning.sysctl import key_to_relpath

DEMO_FACTS = HostFacts(hostname="mta-01", kernel="6.1.0-28-amd64", cpus=8, memory_bytes=16 * 2**30)
"""The header of every screenshot."""

DEMO_KERNEL = {
    key: MODERN_KERNEL[key]
    for key in (*(p.key for p in load_profile("kumomta").params), "net.ipv4.ip_unprivileged_port_start")
}
"""What a current Debian kernel under systemd reports for KumoMTA's twelve keys."""

DEMO_SYSCTL_CONF = """\
# /etc/sysctl.conf - left over from an Elasticsearch install on this host
vm.max_map_count = 262144
"""
"""A file procps reads last at boot: the preview must warn that it wins."""

FROZEN_TIME = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
""""Now" for the demo host (its settings' clock): drop-in stamps, journal times and ids in screenshots."""


class DemoClock:
    """Starts at :data:`FROZEN_TIME` and moves a second per reading: the same stamps on every
    run of a flow, yet an apply and its rollback still get different journal ids."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        moment = FROZEN_TIME + timedelta(seconds=self.readings)
        self.readings += 1
        return moment


def make_demo_host(base: Path, values: dict[str, str] | None = None, *, read_only: bool = False) -> Settings:
    """Write a simulated host under ``base`` and return settings relative to it.

    The caller must run with ``base`` as the working directory, so paths show
    as ``etc/sysctl.d/...`` rather than a temporary directory's name.
    """
    # The tree names its host, so drop-in headers do not carry the name of the machine running the tests.
    for key, value in {"kernel.hostname": DEMO_FACTS.hostname, **(values or DEMO_KERNEL)}.items():
        path = base / "proc/sys" / key_to_relpath(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    (base / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)
    (base / "etc/sysctl.conf").write_text(DEMO_SYSCTL_CONF)
    return Settings(
        sysctl_root=Path("proc/sys"),
        sysctl_d=Path("etc/sysctl.d"),
        state_dir=Path("var/lib/kumotui"),
        system_root=Path("."),
        read_only=read_only,
        clock=DemoClock(),
    )


# --- a scripted benchmark for screenshots ---------------------------------------------

DEMO_TICK = 0.5
"""Seconds between scripted readings, as the real benchmark samples."""
DEMO_MESSAGES = 60_000
"""The scripted run's message count (the demo form asks for it)."""
DEMO_LIVE_TICK = 14
"""The reading the live screenshots hold at: 7 s in, about 60% sent."""
DEMO_PORT_RANGE_WIDTH = 60999 - 32768 + 1


def demo_rate(tick: int) -> float:
    """A steady-looking msgs/s with a dip, the same on every machine."""
    return 5200.0 + 450.0 * math.sin(tick / 2.2) - (900.0 if tick in (9, 10) else 0.0)


def demo_ticks(messages: int = DEMO_MESSAGES) -> list[list[Sample]]:
    """Every scripted poll: a generator and a sink reading each, until ``messages`` are sent."""
    ticks: list[list[Sample]] = []
    sent = 0.0
    tick = 0
    while sent < messages:
        tick += 1
        rate = demo_rate(tick)
        sent = min(float(messages), sent + rate * DEMO_TICK)
        elapsed = round(0.3 + tick * DEMO_TICK, 3)
        latency = {"p50": 4.1 + tick * 0.05, "p95": 7.9 + tick * 0.12, "p99": 9.6 + tick * 0.3, "max": 31.0}
        count = int(sent)
        ticks.append(
            [
                Sample("generator", elapsed, count, 0, 50, rate, latency, count * 1180),
                Sample("sink", elapsed, max(0, count - 37), 0, 50, rate * 0.99, None, count * 1180),
            ]
        )
    return ticks


def demo_host(tick: int) -> HostStats:
    """The host while the scripted run goes: TIME_WAIT climbs toward the port range's width."""
    cores = tuple(min(100.0, 18.0 + ((tick * 7 + core * 23) % 60)) for core in range(DEMO_FACTS.cpus))
    cores = (97.0, *cores[1:])  # one core pinned by the generator
    return HostStats(
        time=float(tick),
        cpu_per_core=cores,
        memory_used=6 * 2**30 + tick * 2**20,
        memory_total=DEMO_FACTS.memory_bytes,
        interface="lo",
        rx_bytes_per_s=6.1e6 + tick * 1e4,
        tx_bytes_per_s=6.1e6 + tick * 1e4,
        tcp_inuse=120 + tick,
        tcp_time_wait=min(26_500, 1_800 * tick),
        open_files=4_212,
        open_files_max=9223372036854775807,
        listen_overflows=0,
        listen_drops=0,
        tcp_established=100,
    )


class DemoSampler(HostSampler):
    """Host readings from :func:`demo_host`, one per call."""

    def __init__(self, interface: str | None = None) -> None:
        """Start at the first scripted reading (no psutil baseline needed)."""
        self.interface = interface
        self.calls = 0

    def sample(self) -> HostStats:
        """The next scripted reading."""
        self.calls += 1
        return demo_host(self.calls)


class ScriptedJob(Job):
    """A stand-in job: no process, a log that the scripted run writes to."""

    def __init__(self, role: Role) -> None:
        """A job that never starts a process."""
        super().__init__(Launcher(), [f"demo-{role}"], name=role)
        self.role = role
        self.lines: list[str] = []

    def log_since(self, cursor: int) -> tuple[int, list[str]]:
        """The scripted lines after ``cursor``."""
        return len(self.lines), self.lines[cursor:]

    def stop(self, timeout: float = 5.0) -> None:
        """Nothing runs."""

    def reading(self) -> Sample | None:
        """The scripted run hands its samples to the benchmark itself."""
        return None

    def summary(self, series: list[Sample]) -> Summary | None:
        """The scripted run builds its own summaries."""
        return None


class ScriptedBenchmark(Benchmark):
    """A :class:`Benchmark` that plays :func:`demo_ticks` instead of starting processes.

    With ``hold_at`` it stops after that many readings and waits, like a run
    in progress, until it is stopped; otherwise it plays to the end and
    finishes with a fixed record. Unpaced, it plays as fast as it can, so the
    screen may see only some readings (a newer one replaces a queued older
    one). ``paced`` runs give out a reading only when the test calls
    :meth:`release`, so a test can wait until the screen showed each one, as
    it would in a real run's half-second polls: screenshots need that to
    look the same every time.
    """

    def __init__(self, plan: BenchPlan, *, hold_at: int | None = None, paced: bool = False) -> None:
        """Script a run of ``plan`` (its message count decides the length)."""
        super().__init__(plan)
        self.hold_at = hold_at
        self.paced = paced
        self.gen_job = ScriptedJob("generator")
        self.sink_job = ScriptedJob("sink")
        self.ticks = demo_ticks(plan.options.messages or DEMO_MESSAGES)
        self.played = 0
        self._released = 0
        self._gate = threading.Condition()

    def release(self, readings: int = 1) -> None:
        """Let ``readings`` more readings of a paced run through."""
        with self._gate:
            self._released += readings
            self._gate.notify_all()

    def _next_released(self) -> bool:
        """Whether the next reading may go: always unpaced; paced, once released (False once stopped)."""
        with self._gate:
            self._gate.wait_for(lambda: not self.paced or self._released > self.played or self._stop.is_set())
        return not self._stop.is_set()

    def start(self) -> None:
        """Nothing to start; the target is fixed."""
        self.generator, self.sink = self.gen_job, self.sink_job
        self.target = "127.0.0.1:2026"

    def run(
        self, on_samples: Callable[[list[Sample]], None] | None = None, interval: float = DEMO_TICK
    ) -> list[Sample]:
        """Play the readings; hold (blocking, as a real run does) at ``hold_at`` until stopped."""
        for samples in self.ticks:
            if not self._next_released():
                break
            self.played += 1
            self.series.extend(samples)
            gen, sink = samples
            self.gen_job.lines.append(
                f'{{"type": "progress", "elapsed": {gen.elapsed - 0.3:.3f}, "sent": {gen.count}, "failed": 0}}'
            )
            self.sink_job.lines.append(
                f'{{"type": "progress", "elapsed": {sink.elapsed:.3f}, "received": {sink.count}, "rejected_mail": 0, '
                f'"rejected_rcpt": 0, "rejected_data": 0, "aborted": 0}}'
            )
            if on_samples is not None:
                on_samples(samples)
            if self.hold_at is not None and self.played >= self.hold_at:
                self._stop.wait()
                break
        return self.series

    def finish(self, host: HostFacts) -> BenchOutcome:
        """A fixed record of what was played (a frozen id and start time).

        Like the real run, the last readings come once the jobs stopped: no
        connections left, and the sink's exact total.
        """
        gen, sink = self.series[-2], self.series[-1]
        elapsed = gen.elapsed - 0.3
        self.series += [
            replace(gen, elapsed=gen.elapsed + DEMO_TICK, connections=0),
            replace(sink, elapsed=sink.elapsed + DEMO_TICK, count=gen.count, connections=0),
        ]
        latency = dict(gen.latency_ms or {})
        options = self.plan.options
        record = replace(
            new_run(
                RunConfig("builtin", self.target, options.concurrency, options.messages, options.duration, 1000),
                host,
                self.plan.parameters,
                profile=self.plan.profile,
                label=self.plan.label,
                now=FROZEN_TIME,
            ),
            series=tuple(self.series),
            measurement=measure(self.series, launched=0.0, ended=elapsed),
            stopped=self.played < len(self.ticks),
            generator=Summary.build(
                "generator", count=gen.count, failed=0, elapsed=elapsed, bytes=gen.bytes, latency_ms=latency
            ),
            sink=Summary.build("sink", count=gen.count, failed=0, elapsed=elapsed, bytes=sink.bytes),
        )
        return BenchOutcome(record, self.target, interrupted=self.played < len(self.ticks))

    def request_stop(self) -> None:
        """Stop early, waking a held or paced run."""
        with self._gate:
            self._stop.set()
            self._gate.notify_all()

    def stop(self) -> None:
        """Release a held or paced run."""
        self.request_stop()


def demo_source(hold_at: int | None = None, *, paced: bool = False) -> BenchSource:
    """Scripted runs and readings: the live screen looks the same on every machine."""
    return BenchSource(
        benchmark=lambda plan, placed: ScriptedBenchmark(plan, hold_at=hold_at, paced=paced),
        backends=lambda: ["builtin"],
        readers=lambda hosts, peers: [SamplerReader(name, DemoSampler()) for name in hosts],
        cpu_reader=lambda pid: ProcessCpu(97.0, 97.0),
        fd_reader=lambda pid: 57,
        nofile=lambda: 1_048_576,
    )


DEMO_RUN_MESSAGES = 300_000
"""Messages in each saved demo run: about a minute each, long enough for a steady-state window."""


def demo_runs(state_dir: Path) -> list[RunRecord]:
    """Save two runs on the demo host, before and after tuning, for the runs screen."""
    tuned = {**DEMO_KERNEL, "net.ipv4.ip_local_port_range": "5000 63001", "net.ipv4.tcp_tw_reuse": "1"}
    tuned |= {"vm.max_map_count": "768000", "net.core.rmem_max": "262144", "net.core.wmem_max": "262144"}
    before = {key: " ".join(value.split()) for key, value in DEMO_KERNEL.items()}
    runs = []
    for minute, parameters, rate, p99, label in (
        (15, before, 4_870.0, 14.2, "before tuning"),
        (45, tuned, 5_310.0, 11.8, "after tuning"),
    ):
        elapsed = DEMO_RUN_MESSAGES / rate
        series = tuple(
            Sample(
                role,
                tick / 2,
                min(DEMO_RUN_MESSAGES, int(rate * tick / 2)),
                # The rate the samples report ramps up over the warm-up and wobbles (the
                # counts, which the figures come from, stay even); latency drifts the same way.
                rate=round(rate * min(1.0, tick / 10) * (1 + 0.04 * math.sin(tick / 6)), 1),
                latency_ms={"p50": round(p99 / 3, 2), "p99": round(p99 * (1 + 0.1 * math.sin(tick / 9)), 2)}
                if role == "generator"
                else None,
            )
            for tick in range(int(elapsed * 2) + 2)
            for role in ("generator", "sink")
        )
        record = new_run(
            RunConfig("builtin", "127.0.0.1:2026", 50, DEMO_RUN_MESSAGES, None, 100_000),
            DEMO_FACTS,
            parameters,
            profile="kumomta",
            label=label,
            now=FROZEN_TIME.replace(minute=minute),
        )
        record = replace(
            record,
            series=series,
            measurement=measure(series, launched=0.0, ended=elapsed),
            generator=Summary.build(
                "generator",
                count=DEMO_RUN_MESSAGES,
                failed=0,
                elapsed=elapsed,
                bytes=DEMO_RUN_MESSAGES * 100_180,
                latency_ms={"p50": p99 / 3, "p90": p99 * 0.7, "p95": p99 * 0.8, "p99": p99, "max": p99 * 3},
            ),
            sink=Summary.build("sink", count=DEMO_RUN_MESSAGES, failed=0, elapsed=elapsed),
        )
        save_run(state_dir, record)
        runs.append(load_run(state_dir, record.id))  # as the app reads it back (rounded as stored)
    return runs
