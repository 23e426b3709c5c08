"""Waiting on state, never on the clock alone.

A test that sleeps a fixed time and then asserts races whatever it waits
for; these helpers poll the state itself and give up only after a generous
timeout, so a slow machine makes a test slower, not red.

* :func:`wait_until` - a predicate, from plain (thread) code.
* :func:`wait_listening` - until something accepts TCP on a loopback port.
* :func:`wait_sessions_closed` - until a server has no client session left open on its port.
* :func:`settle` - the app's workers done and their messages handled (Pilot).
* :func:`wait_for` - a predicate on the app, for a worker that never completes (a held run).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from textual.pilot import Pilot
from textual.worker import WorkerCancelled, WorkerFailed

POLL = 0.02
"""Seconds between two looks at the state: short, so a wait ends soon after the state is reached."""


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = POLL) -> bool:
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` seconds pass (returns False).

    Callers assert on the result, naming what they waited for::

        assert wait_until(lambda: not alive(pid)), f"{pid} still runs"
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_listening(port: int, timeout: float = 10.0, process: subprocess.Popen[Any] | None = None) -> None:
    """Until something accepts on 127.0.0.1:``port``; fails early if ``process`` (the server) exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server meant to listen on {port} exited with {process.returncode}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"nothing listens on {port} after {timeout} s")
        time.sleep(POLL)


async def settle(pilot: Pilot[Any], rounds: int = 20) -> None:
    """Wait until no worker runs and every message they posted is handled.

    A worker's answer may start another worker (host read, then values), so
    one ``wait_for_complete`` is not always enough.
    """
    app = pilot.app
    quiet = 0
    for _ in range(rounds):
        # Expected failures are the app's to show (tests look at its notices); an
        # exclusive worker replaced by a newer one ends cancelled.
        with suppress(WorkerFailed, WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        quiet = quiet + 1 if not any(worker.is_running for worker in app.workers) else 0
        if quiet >= 3:  # a handled answer may still schedule a layout pass or a refit
            return


async def wait_for(pilot: Pilot[Any], ready: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the app run until ``ready()`` (for a worker that holds and never completes, which settle would wait on)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready():
        if loop.time() > deadline:
            raise TimeoutError(f"the app did not reach the expected state within {timeout} s")
        await pilot.pause(POLL)
    await pilot.pause()


_OPEN_SESSION_STATES = {"01", "08"}
"""ESTABLISHED and CLOSE_WAIT in /proc/net/tcp: the server has not closed its side yet."""


def open_sessions(port: int) -> int:
    """TCP sessions whose local port is ``port`` that the server side has not closed yet."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError), open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] in _OPEN_SESSION_STATES:
                    count += 1
    return count


def wait_sessions_closed(port: int, timeout: float = 10.0) -> None:
    """Until a server on ``port`` has answered and closed every session (its counters are then final)."""
    if not wait_until(lambda: open_sessions(port) == 0, timeout):
        raise AssertionError(f"sessions on port {port} still open after {timeout:g} s")
