"""Processes and ports for tests: who is alive, who descends from whom, stopping by PID.

Every process a test starts is stopped by its PID (:func:`stop`); the checks
that nothing is left read ``/proc`` for the PIDs the test itself recorded,
never a system-wide name search, so tests running side by side cannot see
each other's processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from kumotui.bench.run import Benchmark


def alive(pid: int | None) -> bool:
    """Whether ``pid`` names a running (non-zombie) process."""
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """Every descendant PID of ``pid`` (from /proc)."""
    out: list[int] = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for kid in map(int, kids):
        out += [kid, *children(kid)]
    return out


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children, in KiB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def job_pids(bench: Benchmark, *, descendants: bool = False) -> list[int]:
    """The PIDs of a run's sink and generator jobs (with ``descendants``, their workers too)."""
    pids = [job.pid for job in (bench.sink, bench.generator) if job is not None and job.pid is not None]
    if descendants:
        pids += [kid for pid in pids for kid in children(pid)]
    return pids


def stop(process: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM by PID, then SIGKILL if it does not exit in time: never leaves an orphan.

    The pipes stay open, so the caller can still read what the process printed.
    """
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
