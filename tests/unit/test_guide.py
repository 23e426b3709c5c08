"""The guided path's core: resumable progress, detection, first-run defaults, summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.hosts.local import LocalHost
from kumotui.onboarding.guide import (
    STEPS,
    GuideState,
    detect,
    first_bench_defaults,
    is_first_run,
    load_state,
    save_state,
    summary_lines,
)
from kumotui.tuning.journal import Entry, KeyChange


def test_progress_resumes_where_it_stopped(tmp_path: Path) -> None:
    assert is_first_run(tmp_path) and load_state(tmp_path) is None
    state = GuideState()
    assert state.current == "detect"
    state = state.mark("detect", "done").mark("tune", "skipped")
    save_state(tmp_path, state)
    again = load_state(tmp_path)
    assert again is not None and again.current == "sink" and again.started
    assert not is_first_run(tmp_path)
    for step in STEPS:
        again = again.mark(step, "done")
    assert again.finished and again.current is None
    with pytest.raises(ValueError):
        GuideState().mark("dance", "done")


def test_unreadable_progress_starts_over(tmp_path: Path) -> None:
    (tmp_path / "setup.json").write_text("{not json")
    state = load_state(tmp_path)
    assert state is not None and state.current == "detect"


def test_first_bench_defaults_scale_with_the_machine() -> None:
    small = first_bench_defaults(2, 20000)
    big = first_bench_defaults(32, 1_048_576)
    assert small.body_size == big.body_size == 100_000  # KumoMTA's published message size
    assert small.messages == 10_000 and big.messages == 100_000
    assert small.concurrency == 100 and big.concurrency == 1600
    assert first_bench_defaults(64, 1024).concurrency == 10  # a tiny nofile limit bounds it


def test_detect_reads_this_host_without_changing_it() -> None:
    host = LocalHost()
    detection = detect(host, host.facts(), "root")
    rows = {what: (finding, verdict) for what, finding, verdict in detection.lines(20000)}
    assert set(rows) == {
        "Host",
        "CPUs / RAM",
        "KumoMTA",
        "Postfix tools",
        "Privilege",
        "Open files (hard)",
        "Outbound port 25",
        "MTA here",
    }
    assert "needed for 20,000 connections" in rows["Open files (hard)"][0]
    if detection.kumomta_sbin is None:
        assert "built-in sink" in rows["KumoMTA"][0]


def test_summary_names_changes_result_and_routing() -> None:
    entry = Entry(
        "20260101-000000-0001",
        "apply",
        "t",
        "mta",
        "kumomta",
        (KeyChange("net.ipv4.tcp_tw_reuse", "2", "1"),),
        status="applied",
    )
    state = GuideState(applied=(entry.id,), report_path="/tmp/r.md")
    lines = summary_lines(state, [entry], None, "kumo.on('smtp_server_message_received', ...)")
    text = "\n".join(lines)
    assert "net.ipv4.tcp_tw_reuse 2 -> 1 (undo: kumotui rollback 20260101-000000-0001)" in text
    assert "First benchmark: skipped." in text
    assert "    kumo.on('smtp_server_message_received', ...)" in text
