"""The built-in generator against real sinks on loopback: exact counts with our
sink and Postfix's smtp-sink, reconnects, backpressure by class, thousands of
connections, pacing, deadlines, and the engines running as plain scripts.

Its pure parts (sizes, address safety, histograms) are in ``tests/unit/test_engines.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kumotui.backends.builtin import BuiltinGenJob
from kumotui.backends.process import Launcher
from tests.support.processes import free_port, stop
from tests.support.smtp import copy_engines, engine, finish, postfix_cmd, run_gen, sink
from tests.support.waits import wait_listening, wait_until


@pytest.mark.parametrize(
    "args",
    [
        ["--messages", "3000", "--concurrency", "20"],
        ["--messages", "1001", "--concurrency", "7", "--no-pipelining"],
        ["--messages", "2001", "--concurrency", "9", "--workers", "2", "--body-size", "10KB"],
    ],
)
def test_exact_counts_against_builtin_sink(args: list[str]) -> None:
    with sink() as (job, port):
        summary = run_gen(port, *args)
        received = finish(job)
    expected = int(args[1])
    assert (summary["sent"], summary["failed"], summary["unsent"]) == (expected, 0, 0)
    assert received is not None and received["received"] == expected
    lat = summary["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]


def test_exact_counts_against_postfix_smtp_sink(postfix_root: Path) -> None:
    """Interop with Postfix's smtp-sink, with and without PIPELINING offered."""
    root = postfix_root
    for extra in ([], ["-p"]):
        port = free_port()
        argv, env = postfix_cmd(root, "smtp-sink", "-c", *extra, "-m", "100", f"127.0.0.1:{port}", "100")
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port, process=proc)
            summary = run_gen(port, "--messages", "2500", "--concurrency", "25")
        finally:
            stop(proc)
        assert proc.stdout is not None
        with proc.stdout:
            out = proc.stdout.read().decode()
        counts = [int(n) for n in re.findall(r"mesg=(\d+)", out)]
        assert (summary["sent"], summary["failed"]) == (2500, 0)
        assert counts and counts[-1] == 2500


def test_reconnects_after_421_and_per_connection_cap() -> None:
    with sink("--max-messages-per-connection", "7") as (job, port):
        summary = run_gen(port, "--messages", "100", "--concurrency", "3")
        received = finish(job)
    assert (summary["sent"], summary["failed"]) == (100, 0)
    assert received is not None and received["received"] == 100
    assert received["connections_total"] >= 100 // 7
    with sink() as (job, port):
        summary = run_gen(port, "--messages", "100", "--concurrency", "2", "--messages-per-connection", "10")
        received = finish(job)
    assert summary["sent"] == 100
    # 10 + the preflight, plus at most one per slot that reconnected just as the budget ran out
    assert received is not None and 11 <= received["connections_total"] <= 13


def test_backpressure_counted_by_class() -> None:
    with sink("--tempfail-percent", "30", "--permfail-percent", "20") as (job, port):
        summary = run_gen(port, "--messages", "2000", "--concurrency", "10")
        received = finish(job)
    assert received is not None
    assert summary["sent"] + summary["failed"] == 2000
    assert summary["sent"] == received["received"]
    assert summary["failed_by"].get("4xx", 0) == received["refusals"]["data 451"] > 400
    assert summary["failed_by"].get("5xx", 0) == received["refusals"]["data 554"] > 250
    assert received["rejected_data"] == summary["failed"]


def test_refused_recipients_counted_and_reset() -> None:
    with sink() as (job, port):
        summary = run_gen(port, "--messages", "300", "--concurrency", "3", "--recipient", "tempfail@example.com")
        job.stop()
    assert (summary["sent"], summary["failed"], summary["failed_by"]) == (0, 300, {"4xx": 300})


def test_thousands_of_connections() -> None:
    with sink() as (job, port):
        summary = run_gen(port, "--messages", "4000", "--concurrency", "2000", timeout=60)
        received = finish(job)
    assert (summary["sent"], summary["failed"], summary["connect_errors"]) == (4000, 0, {})
    assert summary["connections_total"] == 2000
    assert received is not None and received["received"] == 4000


def test_rate_and_duration() -> None:
    with sink() as (job, port):
        paced = run_gen(port, "--messages", "100", "--rate", "200", "--concurrency", "4")
        timed = run_gen(port, "--duration", "1", "--concurrency", "4")
        received = finish(job)
    assert paced["sent"] == 100 and 0.4 <= paced["elapsed"] < 3
    assert timed["sent"] > 100 and 0.9 <= timed["elapsed"] < 4
    assert received is not None
    assert timed["sent"] + 100 <= received["received"] <= timed["sent"] + 100 + timed["unfinished"]


def test_sigterm_prints_summary_and_exits_zero() -> None:
    with sink() as (_, port):
        job = BuiltinGenJob(Launcher(), ["--target", f"127.0.0.1:{port}", "--duration", "30"]).start()
        try:
            job.wait_ready()
            assert wait_until(lambda: job.last is not None and job.last.get("sent", 0) > 0), "nothing sent yet"
            assert job.pid is not None
            os.kill(job.pid, signal.SIGTERM)  # SIGTERM alone, not the job's stdin-then-SIGTERM stop
            assert job.wait_finished(10)
        finally:
            job.stop()
        summary = job.final
        assert job.process.returncode == 0
    assert summary is not None and summary["sent"] > 0 and summary["elapsed"] < 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "127.0.0.1:1"], "cannot connect"),
        (["--target", "192.0.2.10:25"], "--allow-remote-target"),
        (["--target", "127.0.0.1:2026", "--body-size", "lots"], "--body-size"),
        (["--target", "127.0.0.1:2026", "--domain", "gmail.com", "--domain-suffix", ""], "reserved"),
        (["--target", "nonsense"], "HOST:PORT"),
    ],
)
def test_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    started = time.monotonic()
    done = subprocess.run([*engine("smtp_gen"), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in json.loads(done.stdout.splitlines()[-1])["error"]
    assert time.monotonic() - started < 10


def test_engines_run_as_plain_scripts_without_kumotui(tmp_path: Path) -> None:
    """As shipped to a remote host: the engine files alone, isolated mode (so
    the script's directory is not on sys.path either), no site-packages (so no
    uvloop: the asyncio fallback is exercised too)."""
    copy_engines(tmp_path)
    sink_proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(tmp_path / "smtp_sink.py"), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert sink_proc.stdout is not None
        ready = json.loads(sink_proc.stdout.readline())
        assert ready["loop"] == "asyncio"
        gen = subprocess.run(
            [sys.executable, "-I", "-S", str(tmp_path / "smtp_gen.py"), "--target", f"127.0.0.1:{ready['port']}",
             "--messages", "500", "--concurrency", "5", "--workers", "2"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert gen.returncode == 0, gen.stderr
        assert json.loads(gen.stdout.splitlines()[-1])["sent"] == 500
    finally:
        stop(sink_proc)
    assert sink_proc.stdout is not None
    assert json.loads(sink_proc.stdout.read().splitlines()[-1])["received"] == 500


def test_body_size_325_is_exactly_325_bytes_at_the_sink() -> None:
    """The sink's SIZE limit (RFC 1870: the message, not the final dot) is the judge: 325 fits in 325, not in 324."""
    with sink("--max-message-size", "325") as (job, port):
        summary = run_gen(port, "--messages", "20", "--concurrency", "2", "--body-size", "325")
        received = finish(job)
    assert summary["sent"] == 20 and summary["bytes"] == 20 * 325
    assert received is not None and received["received"] == 20
    with sink("--max-message-size", "324") as (job, port):
        summary = run_gen(port, "--messages", "20", "--concurrency", "2", "--body-size", "325")
        received = finish(job)
    assert summary["sent"] == 0 and summary["failed"] == 20
    assert received is not None and received["refusals"] == {"mail 552": 20}
