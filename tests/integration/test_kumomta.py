"""The KumoMTA backend end to end with the stand-ins (``tests/support/standins/``):
kumod running kumotui's sink policy, traffic-gen against it, counts cross-checked
with ``/metrics``, a failed start, a deadline, and nothing to connect to.

Their formats, from recorded bytes, are in ``tests/unit/test_kumomta_formats.py``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumotui.backends.kumomta import find_kumomta
from kumotui.backends.kumomta.kumod import KumodStderr, kumod_command
from kumotui.backends.kumomta.metrics import fetch_metrics, sink_counters
from kumotui.backends.kumomta.traffic_gen import TrafficGenOutput, traffic_gen_command
from kumotui.backends.samples import Sample
from tests.support.processes import free_port
from tests.support.standins import RunningSink, running_kumod_sink
from tests.support.streams import run_streaming

# --- end to end with the stand-ins ---------------------------------------------------


@pytest.fixture
def kumod_sink(kumo_prefix: Path, public_tmp: Path) -> Iterator[RunningSink]:
    """A stand-in kumod running kumotui's policy on free loopback ports, stopped by PID afterwards."""
    with running_kumod_sink(public_tmp) as sink:
        yield sink


def test_stand_ins_end_to_end(kumod_sink: RunningSink) -> None:
    assert 503 in kumod_sink.statuses  # liveness said "starting" before it said ready
    port, http_port = kumod_sink.port, kumod_sink.http_port
    parser = TrafficGenOutput(expected_messages=1500)
    samples: list[Sample] = []
    command = traffic_gen_command(
        find_kumomta().traffic_gen, target=f"127.0.0.1:{port}", concurrency=4, messages=1500, body_size="2KB"
    )
    assert command[-4:] == ["--duration", "3600", "--body-size", "2KB"]
    finished = run_streaming(
        command, lambda data, t: samples.extend(parser.feed_stdout(data, t)), lambda data, t: parser.feed_stderr(data)
    )
    summary = parser.finish(finished.elapsed)
    assert finished.code == 0
    assert summary.ok, summary.reason
    assert summary.count == 1500 and summary.failed == 0
    assert parser.body_size == 2000
    assert parser.result.ended_by == "All clients finished"
    assert set(parser.result.latency_ms) == {"avg", "min", "max", "p50", "p75", "p90", "p95", "p99", "p99.9"}
    counters = sink_counters(fetch_metrics("127.0.0.1", http_port))
    assert counters.received == summary.count
    assert counters.connections == 0

    process = kumod_sink.process
    os.kill(process.pid, signal.SIGTERM)
    assert process.stderr is not None
    reader = KumodStderr()
    reader.feed(process.stderr.read())
    reader.finish()
    assert process.wait(timeout=10) == 0
    assert reader.smtp_listeners == [f"127.0.0.1:{port}"]
    assert reader.http_listeners == [f"127.0.0.1:{http_port}"]
    assert reader.initialized and reader.shutdown_ok and reader.failure is None


def test_kumod_fails_to_start_on_a_port_in_use(kumod_sink: RunningSink) -> None:
    command = kumod_command(find_kumomta().kumod, kumod_sink.policy, user="nobody")
    reader = KumodStderr()
    finished = run_streaming(command, lambda data, t: None, lambda data, t: reader.feed(data))
    reader.finish()
    assert finished.code != 0
    assert reader.initialized  # it says so anyway ...
    assert reader.failure is not None and "Address already in use" in reader.failure  # ... but it failed


def test_traffic_gen_duration_cuts_a_count_short(kumod_sink: RunningSink) -> None:
    parser = TrafficGenOutput(expected_messages=10**9)
    samples: list[Sample] = []
    command = traffic_gen_command(
        find_kumomta().traffic_gen, target=f"127.0.0.1:{kumod_sink.port}", concurrency=2, messages=10**9, duration=2
    )
    finished = run_streaming(
        command, lambda data, t: samples.extend(parser.feed_stdout(data, t)), lambda data, t: parser.feed_stderr(data)
    )
    summary = parser.finish(finished.elapsed)
    assert parser.result.ended_by == "Deadline reached, stopping"
    assert not summary.ok and summary.reason.startswith("--duration ended the run after")
    assert 0 < summary.count < 10**9
    assert samples and samples[-1].count <= summary.count  # a live progress line was read
    assert samples[-1].rate is not None and samples[-1].connections == 2
    assert sink_counters(fetch_metrics("127.0.0.1", kumod_sink.http_port)).received == summary.count


def test_traffic_gen_to_nothing_fails_but_exits_zero(kumo_prefix: Path) -> None:
    port = free_port()
    parser = TrafficGenOutput()
    command = traffic_gen_command(find_kumomta().traffic_gen, target=f"127.0.0.1:{port}", concurrency=3, messages=10)
    finished = run_streaming(command, lambda data, t: parser.feed_stdout(data, t), lambda d, t: parser.feed_stderr(d))
    summary = parser.finish(finished.elapsed)
    assert finished.code == 0
    assert not summary.ok and summary.count == 0
    reason = f"failed to connect to 127.0.0.1:{port}: Connection refused (os error 111)"
    assert summary.failures == {reason: 3}
