"""Bad input from the environment, as a real process: closed pipes, no terminal, a malformed host for the app.

* ``kumotui check | head -1``: when the reader has gone, Python raises
  BrokenPipeError at the next write. kumotui stops quietly with 141 (what a
  shell reports for SIGPIPE), as Python's documentation recommends, instead
  of a traceback (and a second complaint when stdout is flushed at exit).
* The app with no terminal (``kumotui </dev/null``, a cron job, a pipe) used
  to spin at most of a core forever; now it exits 2 at once and says why.
* ``kumotui --host 'bad host!'`` used to open the app, then fail to connect;
  every ``--host`` is now checked while the arguments are parsed (exit 2).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.trees import MODERN_KERNEL, make_tree


def closed_pipe_run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run kumotui with stdout a pipe whose reader has already gone."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [sys.executable, "-m", "kumotui", *map(str, args)],
            stdout=writer,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=60,
            cwd=cwd,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--sysctl-root", "tree"],
        ["check", "--json", "--sysctl-root", "tree"],
        ["apply", "--dry-run", "--sysctl-root", "tree", "--sysctl-d", "d", "--system-root", "."],
        ["runs", "--state-dir", "state"],
        ["simulate", "sim"],
        ["sink", "--print-routing"],
    ],
    ids=lambda args: "-".join(a for a in args if a.startswith("-") is False and "/" not in a)[:30],
)
def test_a_closed_stdout_ends_quietly(args: list[str], tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", MODERN_KERNEL)
    run = closed_pipe_run(*args, cwd=tmp_path)
    assert run.returncode == 141, run.stderr
    assert run.stderr == ""


@pytest.mark.parametrize("command", [[], ["setup"]])
@pytest.mark.parametrize("stdin", ["devnull", "pipe"])
def test_the_app_without_a_terminal_exits_2_at_once(command: list[str], stdin: str, tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", MODERN_KERNEL)
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "kumotui", *command, "--sysctl-root", "tree", "--state-dir", "state"],
        stdin=subprocess.DEVNULL if stdin == "devnull" else None,
        input="q\n" if stdin == "pipe" else None,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.stderr
    assert "the app needs a terminal" in run.stderr and "Traceback" not in run.stderr
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("host", ["bad host!", "root@", "h:0", "h:99999", "[::1", "-v", "x" * 300])
def test_a_malformed_host_for_the_app_exits_2_before_opening(host: str, tmp_path: Path) -> None:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "kumotui", f"--host={host}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.stderr
    assert "argument --host:" in run.stderr and "Traceback" not in run.stderr
    assert time.monotonic() - started < 10
