"""Samples, rates and summaries; run records saved, listed, loaded and reported."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kumotui.backends.samples import RateWindow, Sample, Summary, active_summary, eta_seconds, mmh, thin_series
from kumotui.bench.measure import measure
from kumotui.bench.published import PUBLISHED_RESULTS, closest_published, comparability
from kumotui.bench.records import MAX_SERIES, RunConfig, RunRecord, RunStatus, list_runs, load_run, new_run, save_run
from kumotui.bench.report import format_runs_table, not_like_for_like, parameter_differences, report_markdown
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts

HOST = HostFacts(hostname="mx1", kernel="6.1.0-18-amd64", cpus=8, memory_bytes=16 * 2**30)
T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
BEFORE = {"net.core.somaxconn": "4096", "net.ipv4.tcp_tw_reuse": "2", "fs.file-max": "9223372036854775807"}
AFTER = {"net.core.somaxconn": "4096", "net.ipv4.tcp_tw_reuse": "1", "vm.max_map_count": "768000"}


# --- samples ----------------------------------------------------------------------------


def test_mmh_is_msgs_per_second_times_3600_over_a_million() -> None:
    assert mmh(1250) == 4.5
    assert mmh(0) == 0


def test_rate_window_slides_and_restarts() -> None:
    window = RateWindow(window=2.0)
    assert window.add(0.0, 0) is None
    assert window.add(1.0, 100) == 100
    assert window.add(2.0, 300) == 150
    assert window.add(3.0, 600) == 250  # (600 - 100) / 2: the reading at 0 s left the window
    assert window.add(4.0, 10) is None  # the counter went back: the source restarted
    assert window.add(5.0, 60) == 50
    with pytest.raises(ValueError, match="positive"):
        RateWindow(0)


def test_eta() -> None:
    assert eta_seconds(500, 1000, 100.0) == 5
    assert eta_seconds(500, None, 100.0) is None
    assert eta_seconds(500, 1000, 0.0) is None
    assert eta_seconds(2000, 1000, 10.0) == 0


def test_summary_build_derives_rates_one_way() -> None:
    summary = Summary.build(
        "generator", count=10_000, failed=0, elapsed=8.0, bytes=10_000 * 100_000, latency_ms={"p50": 1.5, "p99.9": 9}
    )
    assert summary.msgs_per_s == 1250 and summary.mmh == 4.5
    assert summary.mb_per_s == 125
    assert summary.latency_ms == {"p50": 1.5}
    given = Summary.build("generator", count=10, failed=0, elapsed=0.0, msgs_per_s=12.5)
    assert given.msgs_per_s == 12.5 and given.mb_per_s is None
    assert Summary.build("sink", count=10, failed=0, elapsed=0.0).msgs_per_s == 0.0


def test_samples_and_summaries_round_trip_through_json() -> None:
    sample = Sample("generator", 1.5, 100, failed=2, connections=4, rate=66.7, latency_ms={"p50": 1.0}, bytes=1000)
    assert Sample.from_json(json.loads(json.dumps(sample.as_json()))) == sample
    assert Sample("sink", 1.0, 5).as_json() == {"role": "sink", "elapsed": 1.0, "count": 5, "failed": 0}
    summary = Summary.build("sink", count=5, failed=1, elapsed=2.0, failures={"x": 1}, ok=False, reason="why")
    assert Summary.from_json(json.loads(json.dumps(summary.as_json()))) == summary


def test_active_summary_ignores_idle_time() -> None:
    samples = [Sample("sink", t, c) for t, c in [(0, 0), (1, 0), (2, 0), (3, 400), (4, 1000), (5, 1000), (9, 1000)]]
    summary = active_summary("sink", samples)
    assert (summary.count, summary.elapsed, summary.msgs_per_s) == (1000, 2, 500)
    idle = active_summary("sink", samples[:3])
    assert idle.count == 0 and not idle.ok
    assert active_summary("sink", []).reason == "no readings"


def test_thin_series_bounds_each_role_and_keeps_the_last() -> None:
    series = [Sample(role, float(t), t) for t in range(1000) for role in ("generator", "sink")]
    thinned = thin_series(series, 100)
    for role in ("generator", "sink"):
        kept = [s for s in thinned if s.role == role]
        assert 2 <= len(kept) <= 100
        assert kept[0].elapsed == 0 and kept[-1].elapsed == 999
    short = series[:10]
    assert thin_series(short, 100) == sorted(short, key=lambda s: (s.elapsed, s.role))


# --- records -----------------------------------------------------------------------------


def make_run(
    when: datetime,
    rate: float,
    parameters: dict[str, str],
    label: str = "",
    *,
    stopped: bool = False,
    **config: object,
) -> RunRecord:
    """A run of 100,000 messages at ``rate``: a generator series at 1 Hz, measured like a real one."""
    settings: dict[str, object] = {
        "backend": "kumomta",
        "target": "10.0.0.5:2026",
        "concurrency": 200,
        "messages": 100_000,
        "body_size": 100_000,
        "through": "10.0.0.4:25",
    }
    settings.update(config)
    run = new_run(RunConfig(**settings), HOST, parameters, profile="kumomta", label=label, now=when)  # type: ignore[arg-type]
    elapsed = 100_000 / rate
    generator = Summary.build(
        "generator",
        count=100_000,
        failed=0,
        elapsed=elapsed,
        bytes=100_000 * 100_000,
        latency_ms={"p50": 2.0, "p90": 4.0, "p95": 5.0, "p99": 12.5, "max": 80.0},
    )
    sink = Summary.build("sink", count=100_000, failed=0, elapsed=elapsed)
    series = tuple(Sample("generator", float(t), int(rate * t), rate=rate) for t in range(int(elapsed) + 1))
    measurement = measure(series, launched=0.0, ended=elapsed + 0.5)
    return replace(run, generator=generator, sink=sink, series=series, measurement=measurement, stopped=stopped)


def test_save_list_load_round_trip(tmp_path: Path) -> None:
    first = make_run(T0, 1000, BEFORE, label="before tuning")
    second = make_run(T0 + timedelta(hours=1), 1250, AFTER, label="after tuning")
    path = save_run(tmp_path, second)
    save_run(tmp_path, first)
    assert path == tmp_path / "runs" / f"{second.id}.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [r.id for r in list_runs(tmp_path)] == [first.id, second.id]  # newest last
    assert load_run(tmp_path, first.id) == first
    assert load_run(tmp_path, second.id[:-4]) == second  # a unique prefix
    assert first.id == "20260601-120000-0000"
    assert first.started == "2026-06-01T12:00:00+00:00"
    assert first.backend == "kumomta" and first.ok


def test_a_record_from_before_windows_still_loads(tmp_path: Path) -> None:
    run = make_run(T0, 1000, BEFORE)
    data = run.as_json()
    del data["measurement"], data["stopped"]
    for key in ("workers", "sink_workers", "through"):
        del data["config"][key]
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / f"{run.id}.json").write_text(json.dumps(data))
    loaded = load_run(tmp_path, run.id)
    assert loaded.measurement is None and loaded.status is RunStatus.TOO_SHORT  # nothing to judge it by


def test_load_errors_name_what_exists(tmp_path: Path) -> None:
    assert list_runs(tmp_path) == []
    with pytest.raises(KumotuiError, match=r"no run matches 'x' \(latest: none yet\)"):
        load_run(tmp_path, "x")
    save_run(tmp_path, make_run(T0, 1000, BEFORE))
    save_run(tmp_path, make_run(T0 + timedelta(seconds=1), 1000, BEFORE))
    with pytest.raises(KumotuiError, match="more than one run matches '2026'"):
        load_run(tmp_path, "2026")
    (tmp_path / "runs" / "broken.json").write_text("{")
    with pytest.raises(KumotuiError, match=r"broken.json: unreadable run record"):
        list_runs(tmp_path)


def test_saved_series_is_bounded(tmp_path: Path) -> None:
    long_run = make_run(T0, 10, BEFORE)  # 10,000 s at one sample a second
    assert len(long_run.series) > MAX_SERIES
    save_run(tmp_path, long_run)
    loaded = load_run(tmp_path, long_run.id)
    assert len(loaded.series) <= MAX_SERIES
    assert loaded.series[-1] == long_run.series[-1]


def test_unwritable_state_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KumotuiError, match="cannot save the run record"):
        save_run(blocker, make_run(T0, 1000, BEFORE))


# --- measuring: the window, the whole run, too short --------------------------------------------


def ramp(seconds: int, steady: float, *, launched: float = 1.0, clock_offset: float | None = None) -> list[Sample]:
    """A generator that starts slowly (a quarter of ``steady`` for 3 s) and then holds ``steady``."""
    samples, count = [], 0
    for tick in range(1, 2 * seconds + 1):
        t = launched + tick / 2
        count += int((steady / 4 if tick <= 6 else steady) / 2)
        clock = None if clock_offset is None else t - launched - clock_offset
        samples.append(Sample("generator", t, count, clock=clock))
    return samples


def test_the_window_skips_the_warm_up_and_stops_before_the_end() -> None:
    series = ramp(60, 1000.0)
    measured = measure(series, launched=1.0, ended=61.2)
    assert measured.warmup == pytest.approx(6.02)  # 10% of 60.2 s, more than the 5 s floor
    assert measured.window is not None
    assert measured.window.msgs_per_s == pytest.approx(1000.0)  # the slow start is outside the window
    assert measured.window_start == pytest.approx(7.5) and measured.window_end == pytest.approx(61.0)
    assert measured.whole_run.messages == series[-1].count
    assert measured.whole_run.msgs_per_s < 1000.0  # the whole run carries the slow start and the wall time
    assert measured.too_short == ""


def test_the_sources_own_clock_times_the_window() -> None:
    """Readings polled late (the poll's jitter) do not move the rate when the source stamps its counts."""
    series = ramp(60, 1000.0, clock_offset=0.3)
    jittered = [replace(s, elapsed=s.elapsed + (0.4 if i % 2 else 0.0)) for i, s in enumerate(series)]
    measured = measure(jittered, launched=1.0, ended=61.6)
    assert measured.window is not None and measured.window.msgs_per_s == pytest.approx(1000.0)


@pytest.mark.parametrize(("seconds", "why"), [(1, "no steady state"), (20, "too short: ")])
def test_short_runs_are_marked(seconds: int, why: str) -> None:
    measured = measure(ramp(seconds, 1000.0), launched=1.0, ended=1.0 + seconds + 0.2)
    assert measured.too_short.startswith(why)
    assert measured.headline is (measured.window or measured.whole_run)


# --- listing ------------------------------------------------------------------------------


def test_runs_table_says_what_each_run_was_and_how_it_ended() -> None:
    runs = [
        make_run(T0, 1000, BEFORE, label="before tuning"),
        make_run(T0 + timedelta(minutes=1), 1000, BEFORE, stopped=True),
        replace(
            make_run(T0 + timedelta(minutes=2), 1000, BEFORE),
            sink=Summary.build("sink", count=9, failed=1, elapsed=1.0, ok=False, reason="refused"),
        ),
        make_run(T0 + timedelta(minutes=3), 100_000, BEFORE, body_size=1000),  # one second long
    ]
    header, *rows, note = format_runs_table(runs).splitlines()
    assert header.split() == [
        "ID",
        "STARTED",
        "BACKEND",
        "HOST",
        "BODY",
        "CONC",
        "WALL",
        "SENT",
        "MSGS/S",
        "MMH",
        "P99",
        "MS",
        "STATUS",
        "LABEL",
    ]
    assert rows[0].split() == [
        "20260601-120000-0000",
        "2026-06-01",
        "12:00:00Z",
        "kumomta",
        "mx1",
        "100",
        "KB",
        "200",
        "100.5",
        "s",
        "100,000",
        "1,000",
        "3.600",
        "12.5",
        "ok",
        "before",
        "tuning",
    ]
    assert [row.split()[-1] if "short" not in row else "too short" for row in rows[1:]] == [
        "stopped",
        "failed",
        "too short",
    ]
    assert "steady-state window" in note
    assert format_runs_table([]) == "No runs yet."


# --- reports ----------------------------------------------------------------------------------


def test_report_of_one_run_leads_with_what_was_measured() -> None:
    run = make_run(T0, 1000, BEFORE, label="before tuning")
    report = report_markdown(run)
    lines = report.splitlines()
    assert lines[0] == "# kumotui benchmark run 20260601-120000-0000 (before tuning)"
    assert "kumomta generator → MTA under test 10.0.0.4:25 → sink. Status: ok." in lines[2]
    assert any(line.startswith("- Steady state (") and "1,000 msgs/s = 3.600 MMH" in line for line in lines)
    assert any(line.startswith("- Whole run: 100,000 messages in 100.5 s of wall time") for line in lines)
    for line in [
        "| Rate, own clock (msgs/s) | 1,000 | 1,000 |",
        "| MB/s | 100.0 | – |",
        "| Latency p50 (ms) | 2 | – |",
        "| Latency p99 (ms) | 12.5 | – |",
        "| Status | ok | ok |",
        "| Backend | kumomta |",
        "| MTA under test | 10.0.0.4:25 |",
        "| Target | 10.0.0.5:2026 |",
        "| Concurrency | 200 |",
        "| Messages | 100,000 |",
        "| Body size | 100,000 bytes |",
        "| Kernel | 6.1.0-18-amd64 |",
        "| CPUs | 8 |",
        "| Memory | 16.0 GiB |",
        "| net.ipv4.tcp_tw_reuse | 2 |",
        "- 20260601-120000-0000 (before tuning): your MTA relayed 3.600 MMH on 8 CPUs: "
        "73% of 4.9 MMH (8 CPU / 30 GB sender), 89% of 4.034 MMH (c5.2xlarge).",
        "KumoMTA performance docs: 100 KB messages x 100,000, AWS sender vs. an 8 CPU / 16 GB sink:",
        "| KumoMTA | 8 CPU / 30 GB sender | 8 / 30 GB | 4.9 | closest |",
        "| Postfix | c5.2xlarge | 8 / 16 GB | 0.15 | closest |",
    ]:
        assert line in lines, line
    assert "4-6 MMH per node" in report
    assert report.count("| KumoMTA |") + report.count("| Postfix |") == len(PUBLISHED_RESULTS)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"through": None, "backend": "builtin"}, "no MTA in the path (the builtin generator sent straight to a sink"),
        ({"body_size": 1000}, "1,000-byte messages (published: 100,000)"),
        ({"rate": 100_000}, "no steady state"),
        ({"stopped": True}, "stopped early"),
    ],
)
def test_no_percentage_of_published_unless_like_for_like(changes: dict[str, object], why: str) -> None:
    rate = float(changes.pop("rate", 1000))  # type: ignore[arg-type]
    run = make_run(T0, rate, BEFORE, **changes)
    reason = comparability(run)
    assert reason.startswith("Not comparable with KumoMTA's published figures: ") and why in reason
    report = report_markdown(run)
    assert reason in report
    assert "% of" not in report and "| KumoMTA |" not in report


def test_report_comparing_two_runs() -> None:
    before = make_run(T0, 1000, BEFORE, label="before tuning")
    after = make_run(T0 + timedelta(hours=1), 1250, AFTER, label="after tuning")
    report = report_markdown(before, after)
    lines = report.splitlines()
    assert lines[0] == (
        "# kumotui benchmark comparison: 20260601-120000-0000 (before tuning) vs 20260601-130000-0000 (after tuning)"
    )
    assert "Same setup: backend, MTA, message size, concurrency, amount, workers and host." in lines
    assert "| Window rate (msgs/s) | 1,000 | 1,250 | +25.0% (better) |" in lines
    assert "| Window MMH | 3.600 | 4.500 | +25.0% (better) |" in lines
    assert "| Sink rate, own clock (msgs/s) | 1,000 | 1,250 | +25.0% (better) |" in lines
    assert "| Latency p99 (ms) | 12.5 | 12.5 | 0.0% |" in lines
    assert "| net.ipv4.tcp_tw_reuse | 2 | 1 |" in lines
    assert "| fs.file-max | 9223372036854775807 | (not recorded) |" in lines
    assert "| vm.max_map_count | (not recorded) | 768000 |" in lines
    assert not any(line.startswith("| net.core.somaxconn") for line in lines)  # same value: not a difference
    assert "Not like for like" not in report
    assert lines.index("## Setup") < lines.index("## Results") < lines.index("## Kernel parameters that differed")


def test_comparison_leads_with_the_setup_that_differs() -> None:
    before = make_run(T0, 1000, BEFORE)
    slower = make_run(T0 + timedelta(hours=1), 800, BEFORE, concurrency=50, body_size=1000, workers=2)
    slower = replace(slower, generator=replace(slower.generator, latency_p99_ms=25.0))  # type: ignore[type-var]
    report = report_markdown(before, slower)
    assert "| Body size | 100,000 bytes | 1,000 bytes |" in report
    assert "| Concurrency | 200 | 50 |" in report
    assert "| Workers | – | 2 |" in report
    assert (
        "**Not like for like: Body size, Concurrency, Workers differ, so the change is not the kernel's alone.**"
        in report
    )
    assert "| Window rate (msgs/s) | 1,000 | 800 | -20.0% (worse) |" in report
    assert "| Latency p99 (ms) | 12.5 | 25 | +100.0% (worse) |" in report
    assert "None: both runs started with the same recorded values." in report
    assert not_like_for_like(before, slower).startswith("Not like for like: Body size")


def test_a_too_short_or_stopped_run_is_never_compared() -> None:
    long_run = make_run(T0, 1000, BEFORE)
    short = make_run(T0 + timedelta(hours=1), 100_000, BEFORE)
    report = report_markdown(long_run, short)
    assert "Rates not compared: B is too short." in report
    assert "| Window MMH | 3.600 | – | not compared |" in report
    stopped = make_run(T0 + timedelta(hours=2), 1000, BEFORE, stopped=True)
    assert "A was stopped early" in report_markdown(stopped, long_run)


def test_parameter_differences_and_missing_summaries() -> None:
    before, after = make_run(T0, 1000, BEFORE), make_run(T0, 1000, AFTER)
    assert parameter_differences(before, after) == [
        ("fs.file-max", "9223372036854775807", None),
        ("net.ipv4.tcp_tw_reuse", "2", "1"),
        ("vm.max_map_count", None, "768000"),
    ]
    crashed = replace(before, generator=None, sink=None, measurement=None)
    assert not crashed.ok and crashed.status is RunStatus.FAILED
    assert "| Status | – | – |" in report_markdown(crashed)
    assert "| Messages | – | – |" in report_markdown(crashed)


def test_closest_published() -> None:
    assert [r.cpus for r in closest_published(12)] == [8, 8]  # a tie goes to the smaller machine
    assert [(r.study, r.setup) for r in closest_published(14)] == [
        ("seed", "16 CPU / 64 GB sender"),
        ("2023-07", "c5.4xlarge"),
    ]
    assert [r.mmh for r in closest_published(200, "Postfix")] == [0.50]
