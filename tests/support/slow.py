"""Slowing a real kumotui down at its write points, from outside: strace's syscall delay injection.

Crash and lock tests need a real ``kumotui apply`` that spends long enough
at each write point (a value's ``write``, a file's ``fsync`` and
``rename``) for a kill or a second process to land there. kumotui ships no
test hook for that: ``strace -e inject=SYSCALL:delay_enter=MICROSECONDS``
stops the process at each such system call, so the same code as in
production simply runs slower. Every process is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

STRACE = shutil.which("strace")


def strace_usable() -> bool:
    """Whether strace is installed and may trace (ptrace can be forbidden in containers)."""
    if STRACE is None:
        return False
    done = subprocess.run(
        [STRACE, "-qq", "-o", "/dev/null", "-e", "trace=getpid", "-e", "inject=getpid:delay_enter=1", "true"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def require_strace() -> None:
    """Skip (locally) or fail (CI, which installs strace) when strace cannot slow a process down."""
    if not strace_usable():
        if os.environ.get("CI"):
            pytest.fail("CI installs strace and allows ptrace; this test needs it")
        pytest.skip("strace is not installed or ptrace is not allowed here")


def slowed(delays: Mapping[str, float]) -> list[str]:
    """A command prefix that delays each named system call by its seconds, in every thread and child."""
    assert STRACE is not None
    prefix = [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + ",".join(sorted(delays))]
    for call, seconds in sorted(delays.items()):
        prefix += ["-e", f"inject={call}:delay_enter={int(seconds * 1_000_000)}"]
    return prefix


WRITE_POINTS = ("write", "fsync", "rename", "renameat", "renameat2", "unlink", "unlinkat")
"""The system calls behind every write kumotui makes: a value (``write``), an atomic file
(``write``, ``fsync``, ``rename``), a removed drop-in (``unlink``)."""


def kumotui_slowed(args: list[str], delays: Mapping[str, float], **popen: Any) -> subprocess.Popen[Any]:
    """Start ``python -m kumotui ARGS`` under :func:`slowed`; stop it (and strace) by PID."""
    return subprocess.Popen([*slowed(delays), sys.executable, "-m", "kumotui", *args], **popen)
