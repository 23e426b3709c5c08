"""The job model end to end: each backend's sink and generator as real processes.

Counts are cross-checked between the two sides; every PID a run started is
gone afterwards.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from kumotui.backends import SinkRequest, available, resolve
from kumotui.backends.samples import Sample
from kumotui.bench.options import BenchOptions
from kumotui.bench.records import list_runs
from kumotui.bench.run import Benchmark, BenchPlan, run_and_record
from kumotui.errors import KumotuiError
from kumotui.hosts.local import LocalHost
from tests.support.processes import alive, free_port, job_pids
from tests.support.waits import wait_until


def plan(messages: int = 3000, concurrency: int = 20, **extra: object) -> BenchPlan:
    options = BenchOptions(target=None, local_sink=True, messages=messages, concurrency=concurrency, body_size=1000)
    return BenchPlan(options, **extra)  # type: ignore[arg-type]


def test_builtin_run_counts_match_and_is_recorded(tmp_path: Path) -> None:
    bench = Benchmark(plan())
    seen: list[int] = []
    outcome = run_and_record(
        bench, LocalHost().facts(), tmp_path, lambda samples: seen.extend(s.count for s in samples)
    )
    assert outcome.generator is not None and outcome.generator.ok, outcome.generator
    assert outcome.generator.count == 3000 and outcome.generator.failed == 0
    assert outcome.sink is not None and outcome.sink.count == 3000
    assert outcome.generator.mmh == pytest.approx(outcome.generator.msgs_per_s * 3600 / 1e6)
    assert seen, "live samples reached the callback"
    pids = job_pids(bench)
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    (record,) = list_runs(tmp_path)
    assert record.generator is not None and record.generator.count == 3000
    assert record.config.backend == "builtin" and record.series


def test_stopping_mid_run_leaves_no_process() -> None:
    bench = Benchmark(plan(messages=10_000_000, concurrency=10))
    bench.start()

    def stop_once_sending(samples: list[Sample]) -> None:
        if any(s.role == "generator" and s.count > 0 for s in samples):
            bench.request_stop()  # mid-run: some sent, far from all

    bench.run(stop_once_sending)
    outcome = bench.finish(LocalHost().facts())
    assert outcome.interrupted
    assert outcome.generator is not None and 0 < outcome.generator.count < 10_000_000
    assert not any(alive(pid) for pid in job_pids(bench))


def test_kumomta_backend_with_stand_ins(tmp_path: Path, kumo_prefix: Path) -> None:
    assert "kumomta" in available() and resolve("auto") == "kumomta"
    port, http_port = free_port(), free_port()
    bench = Benchmark(
        plan(
            messages=500,
            concurrency=5,
            backend="auto",
            sink=SinkRequest(port=port, http_port=http_port, kumod_user="nobody"),
        )
    )
    outcome = run_and_record(bench, LocalHost().facts(), tmp_path / "state")
    assert bench.plan.backend == "kumomta"
    assert outcome.generator is not None and outcome.generator.ok, outcome.generator
    assert outcome.generator.count == 500
    assert outcome.sink is not None and outcome.sink.count == 500  # from kumod's /metrics
    # kumod stopped gracefully: its last line says so. The line is read by a thread that may trail the
    # process's exit on a loaded machine, so wait for it (a SIGKILLed kumod never writes it).
    sink = bench.sink
    assert sink is not None
    assert wait_until(lambda: any("Shutdown completed OK!" in line for line in sink.log), timeout=10), sink.log[-5:]
    assert not any(alive(pid) for pid in job_pids(bench))


def test_kumomta_failed_start_reports_kumods_reason(kumo_prefix: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        bench = Benchmark(
            plan(backend="kumomta", sink=SinkRequest(port=port, http_port=free_port(), kumod_user="nobody"))
        )
        with pytest.raises(KumotuiError, match=r"failed to start: .*Address already in use"):
            bench.start()
    assert not any(alive(pid) for pid in job_pids(bench))


def test_missing_backend_says_what_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMOMTA_PREFIX", str(tmp_path / "nothing-here"))
    bench = Benchmark(plan(backend="kumomta"))
    with pytest.raises(KumotuiError, match="kumod") as caught:
        bench.start()
    assert str(tmp_path / "nothing-here") in str(caught.value)


def test_postfix_backend_with_the_real_tools(postfix_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMOTUI_POSTFIX_DIR", str(postfix_root))
    bench = Benchmark(plan(messages=2000, concurrency=10, backend="postfix", sink=SinkRequest(port=free_port())))
    outcome = run_and_record(bench, LocalHost().facts(), None)
    assert outcome.generator is not None and outcome.generator.ok, outcome.generator
    assert outcome.generator.count == 2000
    assert outcome.sink is not None and outcome.sink.count == 2000
    assert not any(alive(pid) for pid in job_pids(bench))


def test_unknown_backend() -> None:
    with pytest.raises(KumotuiError, match="--backend 'exim'"):
        resolve("exim")


def test_sample_cadence_is_the_callers_clock() -> None:
    bench = Benchmark(
        plan(
            messages=10_000_000,
            concurrency=5,
        )
    )
    bench.start()
    stamps: list[float] = []
    threading.Timer(1.6, bench.request_stop).start()  # the window whose polls are counted
    start = time.monotonic()
    bench.run(lambda samples: stamps.append(time.monotonic() - start), interval=0.25)
    bench.finish(LocalHost().facts())
    assert 4 <= len(stamps) <= 10
    assert os.environ.get("NO_COLOR") == "1"
