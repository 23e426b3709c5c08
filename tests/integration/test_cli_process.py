"""The few things about ``kumotui`` that need it as a real process (``python -m kumotui``):
signals, exit 130, a SIGKILLed CLI, a real terminal on stdin, and the module entry point.

Everything else about the command line runs in-process (``tests/unit/test_cli_*.py``,
``test_cli_bench.py``). Every process started here is stopped by PID, and the
engines it started are checked gone by their PIDs.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
from pathlib import Path

import pytest

from kumotui import __version__
from tests.support.cli import kumotui, kumotui_process
from tests.support.processes import alive, children, free_port, stop
from tests.support.trees import host_flags, read_tree
from tests.support.waits import wait_until


def test_the_module_runs_and_exit_codes_cross_the_process_boundary(modern_tree: Path) -> None:
    version = kumotui("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"kumotui {__version__}"
    check = kumotui("check", "--sysctl-root", modern_tree)
    assert check.returncode == 1 and "6 of 12 parameters need a change." in check.stdout
    bad = kumotui("check", "--sysctl-root", modern_tree / "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sink_stops_cleanly_with_summary_and_no_process_left(sig: signal.Signals) -> None:
    proc = kumotui_process("sink", "--listen", "127.0.0.1:0", "--workers", "2", stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["type"] == "ready" and ready["workers"] == 2
        progress = json.loads(proc.stdout.readline())
        assert progress["type"] == "progress" and {
            "elapsed",
            "received",
            "rejected_mail",
            "rejected_rcpt",
            "rejected_data",
            "connections",
            "bytes",
        } <= set(progress)
        family = children(proc.pid)
        assert len(family) == 4  # the watchdog, the engine and its two workers
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        last = json.loads(proc.stdout.read().strip().splitlines()[-1])
        assert last["type"] == "summary"
        assert wait_until(lambda: not any(alive(pid) for pid in family)), [p for p in family if alive(p)]
    finally:
        stop(proc)


def test_killed_cli_leaves_no_orphan() -> None:
    """SIGKILL gives the CLI no chance to clean up; the engine sees stdin EOF and exits."""
    proc = kumotui_process("sink", "--listen", "127.0.0.1:0", stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        engine_pid = json.loads(proc.stdout.readline())["pid"]
        assert alive(engine_pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert wait_until(lambda: not alive(engine_pid), timeout=5), f"engine {engine_pid} outlived the CLI"
    finally:
        stop(proc)


def test_interrupted_bench_shows_live_progress_then_exits_130_with_the_run_saved(tmp_path: Path) -> None:
    """On a terminal, bench shows live progress on stderr; Ctrl+C mid-run stops the engines,
    prints and saves the partial run, and exits 130."""
    controller, terminal = pty.openpty()
    args = ["bench", "--local-sink", "--duration", "60", "--rate", "200", "--state-dir", str(tmp_path)]
    proc = kumotui_process(*args, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    shown = bytearray()

    def sending() -> bool:
        if select.select([controller], [], [], 0)[0]:
            shown.extend(os.read(controller, 65536))
        return re.search(rb"sent [1-9]", shown) is not None

    try:
        assert wait_until(sending, timeout=30), shown.decode(errors="replace")
        engines = children(proc.pid)
        assert len(engines) >= 2  # the sink and the generator
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        stop(proc)
        with contextlib.suppress(OSError):  # EIO once the process is gone
            while chunk := os.read(controller, 65536):
                shown.extend(chunk)
        os.close(controller)
    assert proc.returncode == 130, shown.decode(errors="replace")
    assert b"Traceback" not in shown
    assert b"sent" in out and b"Whole run" in out and b"stopped" in out
    (record,) = (json.loads(path.read_text()) for path in (tmp_path / "runs").glob("*.json"))
    assert record["generator"]["count"] > 0
    assert wait_until(lambda: not any(alive(pid) for pid in engines)), [p for p in engines if alive(p)]


def test_apply_asks_on_a_terminal(sim_paths: dict[str, Path]) -> None:
    """On a real terminal apply asks; "n" changes nothing (exit 1), "y" applies (exit 0)."""
    for answer, code in (("n", 1), ("y", 0)):
        controller, terminal = pty.openpty()
        try:
            os.write(controller, f"{answer}\n".encode())  # typed ahead; the line discipline keeps it
            proc = kumotui_process(
                "apply",
                *host_flags(sim_paths),
                stdin=terminal,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                out, err = proc.communicate(timeout=60)
            finally:
                stop(proc)
        finally:
            os.close(terminal)
            os.close(controller)
        assert proc.returncode == code, out + err
        assert "Apply 6 change(s)? [y/N]" in out
        expected = "65530" if answer == "n" else "768000"
        assert read_tree(sim_paths["tree"], "vm.max_map_count") == expected
        if answer == "n":
            assert "Nothing was changed." in out


def test_sink_kumomta_prints_samples_and_stops_cleanly(kumo_prefix: Path) -> None:
    port, http_port = free_port(), free_port()
    args = [
        "sink",
        "--backend",
        "kumomta",
        "--listen",
        f"127.0.0.1:{port}",
        "--http-port",
        str(http_port),
        "--kumod-user",
        "nobody",
    ]
    proc = kumotui_process(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["type"] == "ready" and ready["backend"] == "kumomta" and ready["port"] == port
        progress = json.loads(proc.stdout.readline())
        assert progress["type"] == "progress" and progress["received"] == 0
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=20)
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["type"] == "summary" and proc.returncode == 0
    finally:
        stop(proc)
