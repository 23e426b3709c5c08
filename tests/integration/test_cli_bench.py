"""``kumotui bench`` and ``kumotui sink`` as a user runs them: real processes,
real loopback sockets, exit codes, no tracebacks, no orphans."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.smtp_support import alive, children

KUMOTUI = [sys.executable, "-m", "kumotui"]


def kumotui(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end."""
    return subprocess.run([*KUMOTUI, *args], capture_output=True, text=True, timeout=timeout)


def test_done_when_command() -> None:
    """The issue's acceptance command: 20000 sent, 0 failed, the sink agrees."""
    done = kumotui(
        "bench", "--local-sink", "--messages", "20000", "--body-size", "1KB", "--concurrency", "50", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["sent"], result["failed"]) == (20000, 0)
    assert result["sink"]["received"] == 20000
    assert result["msgs_per_s"] > 0 and result["mmh"] == pytest.approx(result["msgs_per_s"] * 3600 / 1e6, rel=1e-3)
    assert {"p50", "p90", "p95", "p99", "max"} <= set(result["latency_ms"])
    assert "elapsed" in result and "mb_per_s" in result


def test_human_summary() -> None:
    done = kumotui("bench", "--local-sink", "--messages", "500", "--body-size", "100KB", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "sent        500" in done.stdout and "MMH" in done.stdout
    assert "received 500" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--body-size", "lots"], "--body-size"),
        (["--body-size", "0"], "--body-size"),
        (["--body-size", "-5KB"], "--body-size"),
        (["--body-size", "9GB"], "--body-size"),
        (["--messages", "0"], "--messages"),
        (["--rate", "-1"], "--rate"),
        (["--duration", "0"], "--duration"),
        (["--concurrency", "0"], "--concurrency"),
        (["--messages", "many"], "--messages"),
    ],
)
def test_nonsense_input_is_refused(args: list[str], message: str) -> None:
    done = kumotui("bench", "--local-sink", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_unreachable_target_fails_fast() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    done = kumotui("bench", "--target", f"127.0.0.1:{port}", "--messages", "10", "--connect-timeout", "2")
    assert done.returncode == 2 and "cannot connect" in done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 10


def test_remote_target_refused_without_flag() -> None:
    done = kumotui("bench", "--target", "192.0.2.10:25", "--messages", "1")
    assert done.returncode == 2
    assert "--allow-remote-target" in done.stderr and "Traceback" not in done.stderr


def test_sink_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = kumotui("sink", "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert "already in use" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sink_stops_cleanly_with_summary_and_no_process_left(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [*KUMOTUI, "sink", "--listen", "127.0.0.1:0", "--workers", "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["type"] == "ready" and ready["workers"] == 2
        progress = json.loads(proc.stdout.readline())
        assert progress["type"] == "progress" and {"elapsed", "received", "rejected", "connections", "bytes"} <= set(
            progress
        )
        family = children(proc.pid)
        assert len(family) == 3  # the engine and its two workers
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        last = json.loads(proc.stdout.read().strip().splitlines()[-1])
        assert last["type"] == "summary"
        time.sleep(0.3)
        assert not any(alive(pid) for pid in family)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_cli_leaves_no_orphan() -> None:
    """SIGKILL gives the CLI no chance to clean up; the engine sees stdin EOF and exits."""
    proc = subprocess.Popen([*KUMOTUI, "sink", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        engine_pid = json.loads(proc.stdout.readline())["pid"]
        assert alive(engine_pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        deadline = time.monotonic() + 5
        while alive(engine_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(engine_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
