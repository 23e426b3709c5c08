"""Running the ``kumotui`` command: in-process for most tests, as a real process for a few.

:class:`Cli` (the ``cli`` fixture) calls :func:`kumotui.cli.main` in the test's
own interpreter, as Harlequin's CLI tests do: stdout and stderr come from
``capsys``, the exit code is ``main``'s return value (or argparse's
``SystemExit``), stdin is a pipe-like ``StringIO`` (never a terminal), and
environment variables are set with ``monkeypatch`` for the rest of the test.
That is fast and counts towards coverage.

:func:`kumotui` runs ``python -m kumotui`` in a fresh interpreter to its end,
and :func:`kumotui_process` starts one, for what needs a real process:
signals, exit 130, inherited stdin, the module entry point, a namespace
made with ``unshare``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumotui.cli import main


@dataclass(frozen=True)
class CliResult:
    """What one command printed and how it exited (the shape of ``subprocess.CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str


class Cli:
    """Calls ``kumotui.cli.main(ARGS)`` in-process and captures what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None, stdin: str = "") -> CliResult:
        """Run one command; ``env`` entries stay set for the rest of the test."""
        for name, value in (env or {}).items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self.capsys.readouterr()  # only this command's output
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit:  # argparse: --help, --version, a bad flag
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        out, err = self.capsys.readouterr()
        return CliResult(code, out, err)


def kumotui(
    *args: str | Path,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    prefix: list[str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kumotui ARGS`` in a fresh interpreter (optionally behind ``prefix``, e.g. unshare)."""
    command = [*(prefix or []), sys.executable, "-m", "kumotui", *map(str, args)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


INTERRUPTIBLE = ["env", "--default-signal=INT"]
"""Runs a command with SIGINT at its default, as a shell starts a foreground job.

A test runner started in the background (``cmd &`` in a script, ``nohup``)
ignores SIGINT, and its children inherit that: Python then never turns
SIGINT into KeyboardInterrupt, and a test of Ctrl+C would wait forever.
``env`` execs the command, so its PID is the one the test signals."""


def kumotui_process(*args: str | Path, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``python -m kumotui ARGS`` (Ctrl+C, i.e. SIGINT, reaches it); the caller stops it by PID."""
    return subprocess.Popen([*INTERRUPTIBLE, sys.executable, "-m", "kumotui", *map(str, args)], **popen)
