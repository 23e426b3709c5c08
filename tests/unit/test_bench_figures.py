"""What the live benchmark screen shows, computed without a terminal.

:mod:`kumotui.benchlive` derives every number on the screen (progress, ETA,
MMH, trends, the hints) and parses the form; the jobs expose their log and
failures while they run. All of it is plain data, tested here directly.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from kumotui.backends import preferred
from kumotui.backends.builtin import BuiltinGenJob, BuiltinSinkJob
from kumotui.backends.process import ChildProcess, Launcher
from kumotui.backends.samples import Sample, Summary
from kumotui.bench.form import BenchForm, field_for_error
from kumotui.bench.hints import HintInputs, evaluate
from kumotui.bench.hoststats import HostSampler, ProcessCpu
from kumotui.bench.live import LiveWatch, effective_duration, eta_of, progress_of, summary_lines, trend
from kumotui.bench.measure import measure
from kumotui.bench.options import BenchOptions
from kumotui.bench.records import RunConfig, RunRecord, new_run
from kumotui.bench.run import Benchmark, BenchOutcome, BenchPlan
from kumotui.errors import KumotuiError
from kumotui.text.format import (
    format_bytes,
    format_bytes_rate,
    format_compact,
    format_eta,
    format_mmh,
    format_ms,
    format_rate,
    format_size,
)
from kumotui.ui.widgets.glyphs import cpu_bars
from tests.support.demo import DEMO_FACTS, DemoSampler, ScriptedJob, demo_host

PARAMS = {"net.ipv4.ip_local_port_range": "32768 60999", "net.ipv4.tcp_tw_reuse": "2"}


# --- the form ----------------------------------------------------------------------


def test_form_defaults_make_a_valid_local_run() -> None:
    options = BenchForm().options()
    assert options.local_sink and options.target is None
    assert (options.messages, options.duration, options.concurrency, options.body_size) == (100000, None, 50, 1000)


def test_form_fields_parse_with_separators_and_units() -> None:
    form = BenchForm(messages="1,000,000", duration="90", rate="2_500", body_size="100KB", workers="4")
    options = form.options()
    assert (options.messages, options.duration, options.rate, options.body_size, options.workers) == (
        1_000_000,
        90.0,
        2500.0,
        100_000,
        4,
    )


@pytest.mark.parametrize(
    ("form", "flag", "field"),
    [
        (BenchForm(messages="many"), "--messages 'many': expected a whole number", "messages"),
        (BenchForm(messages="0"), "--messages must be at least 1", "messages"),
        (BenchForm(duration="soon"), "--duration 'soon': expected a number", "duration"),
        (BenchForm(duration="inf"), "--duration 'inf': expected a finite number", "duration"),
        (BenchForm(concurrency="0"), "--concurrency must be within 1-100000", "concurrency"),
        (BenchForm(body_size="12XB"), "--body-size", "body_size"),
        (BenchForm(workers="999"), "--workers must be within 1-256", "workers"),
        (BenchForm(sink="target"), "--target: give the HOST:PORT", "target"),
        (BenchForm(sink="target", target="203.0.113.9:25"), "--target", "target"),
        (BenchForm(backend="exim"), "--backend 'exim'", "backend"),
    ],
)
def test_form_errors_name_the_flag_and_field(form: BenchForm, flag: str, field: str) -> None:
    with pytest.raises(KumotuiError) as error:
        form.options()
    assert str(error.value).startswith(flag)
    assert field_for_error(str(error.value)) == field


def test_form_describes_the_run_in_one_line() -> None:
    form = BenchForm(messages="", duration="30", rate="500", workers="2")
    line = form.describe(form.options(), "127.0.0.1:2026")
    assert line == "builtin → 127.0.0.1:2026 · 30 s · 1 KB · 50 conns · ≤500/s · 2 workers"
    both = BenchForm(messages="5000", duration="10")
    assert "5,000 msgs or 10 s" in both.describe(both.options())
    assert "→ local sink" in both.describe(both.options())


def test_preferred_backend_is_what_auto_picks() -> None:
    assert preferred(["builtin"]) == "builtin"
    assert preferred(["builtin", "postfix", "kumomta"]) == "kumomta"


# --- derived figures -----------------------------------------------------------------


def test_progress_by_count_by_time_or_whichever_ends_first() -> None:
    assert progress_of(2500, 10000, 1.0, None) == 0.25
    assert progress_of(0, None, 15.0, 60.0) == 0.25
    assert progress_of(2500, 10000, 30.0, 60.0) == 0.5  # the deadline is nearer
    assert progress_of(20000, 10000, 1.0, None) == 1.0
    assert progress_of(5, None, 1.0, None) == 0.0


def test_eta_from_rate_or_deadline() -> None:
    assert eta_of(2500, 10000, 500.0, 5.0, None) == 15.0
    assert eta_of(2500, 10000, 500.0, 5.0, 10.0) == 5.0  # the deadline comes first
    assert eta_of(0, None, None, 12.5, 60.0) == 47.5
    assert eta_of(10, 100, None, 1.0, None) is None
    assert eta_of(10, 100, 0.0, 1.0, None) is None
    assert eta_of(100, 100, 0.0, 9.0, None) == 0.0  # all sent, the rate has dropped to zero


def test_effective_duration_matches_the_generators_default() -> None:
    assert effective_duration(BenchOptions(None, True, messages=None)) == 60.0
    assert effective_duration(BenchOptions(None, True, messages=10)) is None
    assert effective_duration(BenchOptions(None, True, messages=10, duration=5)) == 5


def test_trend_compares_recent_with_before() -> None:
    assert trend([1.0] * 11) == ""
    assert trend([1.0] * 12) == "steady"
    assert trend([1.0] * 6 + [1.3] * 6) == "rising"
    assert trend([1.0] * 6 + [0.8] * 6) == "falling"
    assert trend([1.0] * 6 + [1.1] * 6) == "steady"
    assert trend([0.0] * 6 + [0.5] * 6) == "rising"
    assert trend([0.0] * 12) == "steady"


def test_wording_of_numbers() -> None:
    assert (format_rate(None), format_rate(12345.6), format_rate(42.25)) == ("–", "12,346", "42.2")
    assert (format_mmh(4.0344), format_mmh(18.85), format_mmh(143.92)) == ("4.034", "18.85", "143.9")
    assert (format_ms(0.4123), format_ms(3.021), format_ms(41.23), format_ms(1204.4)) == (
        "0.412",
        "3.02",
        "41.2",
        "1,204",
    )
    assert (format_eta(None), format_eta(6.2), format_eta(750), format_eta(3723)) == ("–", "0:07", "12:30", "1:02:03")
    assert (format_size(1000), format_size(100_000), format_size(1_500_000), format_size(512)) == (
        "1 KB",
        "100 KB",
        "1.5 MB",
        "512 B",
    )
    assert (format_bytes(16 * 2**30), format_bytes(512 * 2**20)) == ("16.0 GiB", "512.0 MiB")
    assert (format_bytes_rate(6.1e6), format_bytes_rate(2.5e9), format_bytes_rate(300)) == (
        "6.1 MB/s",
        "2.5 GB/s",
        "300 B/s",
    )
    assert (format_compact(2340), format_compact(12_345), format_compact(1_048_576)) == ("2,340", "12.3k", "1.0M")
    assert format_compact(9223372036854775807) == "9.2E"


def test_cpu_bars_one_per_core_or_grouped() -> None:
    assert cpu_bars([0.0, 50.0, 100.0]) == " ▄█"
    assert cpu_bars([1.0]) == "▁"  # any load shows
    bars = cpu_bars([100.0] * 96 + [0.0] * 96, width=48)
    assert len(bars) == 48 and bars == "█" * 24 + " " * 24


# --- one tick ----------------------------------------------------------------------------


class FakeBench(Benchmark):
    """A benchmark whose jobs are stand-ins: only what a tick reads."""

    def __init__(self, options: BenchOptions) -> None:
        super().__init__(BenchPlan(options))
        self.generator = ScriptedJob("generator")
        self.sink = ScriptedJob("sink")
        self.target = "127.0.0.1:2026"


def watch_of(options: BenchOptions, cpu: ProcessCpu | None = None) -> LiveWatch:
    return LiveWatch(options, PARAMS, sampler=DemoSampler, cpu_reader=lambda pid: cpu, nofile=4096, points=5)


def test_a_tick_derives_every_figure() -> None:
    options = BenchOptions(None, True, messages=10_000)
    bench = FakeBench(options)
    watch = watch_of(options)
    assert isinstance(bench.generator, ScriptedJob) and isinstance(bench.sink, ScriptedJob)
    bench.generator.lines += ['{"type": "ready"}', '{"type": "progress"}']
    first = watch.tick(bench, [Sample("generator", 0.5, 0, rate=None), Sample("sink", 0.5, 0, connections=0)])
    assert (first.sent, first.progress, first.eta, first.mmh) == (0, 0.0, None, None)
    latency = {"p50": 3.0, "p95": 5.0, "p99": 7.5}
    figures = watch.tick(
        bench,
        [
            Sample("generator", 2.5, 4000, 2, 50, 2000.0, latency),
            Sample("sink", 2.5, 3990, 1, 48, 1990.0),
        ],
    )
    assert (figures.sent, figures.failed, figures.rate) == (4000, 2, 2000.0)
    assert figures.mmh == pytest.approx(7.2)
    assert figures.progress == 0.4 and figures.eta == 3.0
    assert (figures.received, figures.sink_rate, figures.sink_connections) == (3990, 1990.0, 48)
    assert not figures.received_skewed
    assert figures.latency == latency and figures.p99_series == (7.5,)
    assert figures.rate_series == (0.0, 2000.0)
    assert figures.host == demo_host(2) and figures.ports == 28232 and figures.nofile == 4096
    assert figures.target == "127.0.0.1:2026" and figures.elapsed == 2.5
    assert watch.take_log() == ["0:01 gen  ready", "0:01 gen  progress"]  # readable: time, role, event
    assert watch.take_log() == []


def test_series_are_bounded_and_stale_samples_ignored() -> None:
    options = BenchOptions(None, True, duration=60)
    bench, watch = FakeBench(options), watch_of(options)
    for tick in range(1, 20):
        figures = watch.tick(bench, [Sample("generator", tick * 0.5, tick * 100, rate=float(tick))])
    assert figures.rate_series == (15.0, 16.0, 17.0, 18.0, 19.0)  # points=5
    late = watch.tick(bench, [Sample("generator", 1.0, 50, rate=99.0)])
    assert late.sent == 1900 and late.rate_series[-1] == 19.0
    # By time: the first reading is the generator's start.
    assert late.progress == pytest.approx((9.5 - 0.5) / 60)


def test_hints_stay_listed_once_seen_warnings_first() -> None:
    options = BenchOptions(None, True, messages=100_000)
    bench = FakeBench(options)
    watch = watch_of(options, ProcessCpu(99.0, 99.0))
    early = watch.tick(bench, [Sample("generator", 0.5, 100, rate=200.0)])
    assert [h.id for h in early.hints] == ["generator-pinned"]
    for _ in range(13):  # TIME_WAIT climbs past 80% of the port range in the demo readings
        late = watch.tick(bench, [])
    assert [h.id for h in late.hints] == ["time-wait", "generator-pinned"]
    assert late.active_hints == {"time-wait", "generator-pinned"}
    watch.cpu_reader = lambda pid: ProcessCpu(20.0, 20.0)
    calm = watch.tick(bench, [])
    assert "generator-pinned" in {h.id for h in calm.hints} and "generator-pinned" not in calm.active_hints


def test_failures_reach_the_hint_rules_while_the_run_goes() -> None:
    options = BenchOptions(None, True, messages=100_000)
    bench = FakeBench(options)
    gen = BuiltinGenJob(Launcher(), ["--target", "127.0.0.1:1"])
    gen.on_stdout(
        b'{"type": "progress", "sent": 5, "failed": 12, '
        b'"connect_errors": {"connect: Cannot assign requested address (os error 99)": 12}}\n'
    )
    bench.generator = gen
    figures = watch_of(options).tick(bench, [])
    assert [h.id for h in figures.hints] == ["ports-exhausted"]
    assert figures.hints[0].param == "net.ipv4.ip_local_port_range"


def test_rates_are_labelled_now_steady_and_whole_run() -> None:
    """Now is the generator's own recent rate; steady counts from the end of the warm-up
    (10% of a 60 s run, at least 5 s); whole run is everything over the time since launch."""
    options = BenchOptions(None, True, duration=60)
    bench, watch = FakeBench(options), watch_of(options)
    warm = [watch.tick(bench, [Sample("generator", t / 2, 500 * t, rate=1234.0)]) for t in range(1, 13)]
    assert all(f.steady_rate is None for f in warm) and warm[-1].warmup == 6.0
    assert warm[-1].whole_rate == pytest.approx(1000.0)
    # From 6 s on the generator sends 3,000/s: steady says so, whole run lags behind it.
    figures = None
    for t in range(13, 25):
        figures = watch.tick(bench, [Sample("generator", t / 2, 6000 + 1500 * (t - 12), rate=3100.0)])
    assert figures is not None
    assert figures.rate == 3100.0 and figures.steady_rate == pytest.approx(3000.0)
    assert figures.steady_mmh == pytest.approx(10.8)
    assert figures.whole_rate == pytest.approx((6000 + 1500 * 12) / 12.0)


def test_sink_count_ahead_of_the_generator_is_marked_and_refusals_are_split() -> None:
    options = BenchOptions(None, True, messages=10_000)
    bench = FakeBench(options)
    sink = BuiltinSinkJob(Launcher(), [])
    sink.on_stdout(
        b'{"type": "progress", "received": 1200, "rejected_mail": 3, "rejected_rcpt": 7, '
        b'"rejected_data": 2, "aborted": 1, "timeouts": 0}\n'
    )
    bench.sink = sink
    figures = watch_of(options).tick(bench, [Sample("generator", 1.0, 1000), Sample("sink", 1.2, 1200)])
    assert figures.received == 1200 and figures.received_skewed
    assert dict(figures.sink_refused) == {
        "rejected_mail": 3,
        "rejected_rcpt": 7,
        "rejected_data": 2,
        "aborted": 1,
        "timeouts": 0,
    }


def test_no_eta_once_a_stop_was_asked() -> None:
    options = BenchOptions(None, True, duration=60)
    bench, watch = FakeBench(options), watch_of(options)
    running = watch.tick(bench, [Sample("generator", 1.0, 100, rate=100.0)])
    assert running.eta is not None
    bench.request_stop()
    assert watch.tick(bench, [Sample("generator", 1.5, 150, rate=100.0)]).eta is None


def _run(config: RunConfig, seconds: float, **changes: object) -> RunRecord:
    """A finished record whose generator sent 5,000 msgs/s for ``seconds``, read at 2 Hz."""
    series = tuple(Sample("generator", t / 2, 2500 * t) for t in range(int(seconds * 2) + 1))
    record = replace(
        new_run(config, DEMO_FACTS, {}, label="before tuning"),
        generator=Summary.build("generator", count=int(5000 * seconds), failed=0, elapsed=seconds),
        sink=Summary.build("sink", count=int(5000 * seconds), failed=0, elapsed=seconds),
        series=series,
        measurement=measure(series, launched=0.0, ended=seconds),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def test_summary_card_of_a_calibration_says_why_it_is_not_compared() -> None:
    record = _run(RunConfig("builtin", "127.0.0.1:2026", 50, None, 60, 1000), 60)
    lines = summary_lines(BenchOutcome(record, "127.0.0.1:2026"))
    assert lines[0] == f"Run {record.id} (before tuning): ok · saved (h lists every run)"
    assert "no MTA in the path" in lines[1]
    assert lines[2] == "300,000 sent · 0 failed · sink received 300,000"
    assert lines[3].startswith("Steady state (6.0 s to 59.5 s, after a 6 s warm-up): 5,000 msgs/s = 18.00 MMH")
    assert lines[4].startswith("Whole run: 300,000 messages in 60.0 s of wall time = 5,000 msgs/s")
    assert lines[5].startswith("Not comparable with KumoMTA's published figures: no MTA in the path")
    assert "1,000-byte messages" in lines[5] and "%" not in "".join(lines)


def test_summary_card_of_a_like_for_like_run_shows_the_published_percentage() -> None:
    config = RunConfig("builtin", "127.0.0.1:2026", 50, None, 60, 100_000, through="127.0.0.1:2525")
    lines = summary_lines(BenchOutcome(_run(config, 60), "127.0.0.1:2525"))
    assert "MTA under test 127.0.0.1:2525" in lines[1]
    assert lines[-1].startswith("your MTA relayed 18.00 MMH on 8 CPUs: 367% of 4.9 MMH (8 CPU / 30 GB sender)")


def test_a_one_second_run_is_too_short_and_never_a_percentage() -> None:
    config = RunConfig("builtin", "127.0.0.1:2026", 50, None, 1, 100_000, through="127.0.0.1:2525")
    lines = summary_lines(BenchOutcome(_run(config, 1), "127.0.0.1:2525"))
    assert "too short" in lines[0]
    assert any("no steady state" in line for line in lines)
    assert "%" not in "".join(lines)
    stopped = summary_lines(BenchOutcome(_run(config, 60, stopped=True), "x", interrupted=True))
    assert "stopped early, partial counts" in stopped[0] and "%" not in "".join(stopped)


# --- the core's live seams ---------------------------------------------------------------


def test_job_log_since_returns_only_new_lines_even_past_the_bound() -> None:
    child = ChildProcess(["true"])
    child.log = type(child.log)(maxlen=3)
    child._add_log(["a", "b"])
    cursor, lines = child.log_since(0)
    assert (cursor, lines) == (2, ["a", "b"])
    child._add_log(["c", "d", "e", "f"])
    cursor, lines = child.log_since(cursor)
    assert (cursor, lines) == (6, ["d", "e", "f"])  # c fell off the bounded log
    assert child.log_since(cursor) == (6, [])


def test_generator_pinned_points_at_the_workers_flag() -> None:
    (hint,) = evaluate(HintInputs(generator_cpu=ProcessCpu(99, 99)))
    assert hint.param == "--workers"


def test_host_reading_counts_established_connections() -> None:
    stats = HostSampler("lo").sample()
    assert stats.tcp_established is not None and stats.tcp_established >= 0
