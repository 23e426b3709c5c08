"""One job model for every benchmark backend, wherever it runs.

A :class:`Job` is one OS process (a sink or a generator) of some backend:
kumotui's own engines, KumoMTA's kumod and traffic-gen, or Postfix's
smtp-sink and smtp-source. Every job is driven the same way: ``start()``,
``wait_ready()``, ``reading()`` polled on the caller's clock (one
:class:`~kumotui.backends.samples.Sample` type for all), ``stop()`` (graceful, then
forceful, by PID) and ``summary()``; its raw output is kept in a bounded
log. The CLI and the UI use only this model.

Processes are started from argument lists, never shell text, by a
:class:`~kumotui.backends.process.Launcher`, here or over SSH, always under a
watchdog that stops the job when kumotui's end of its stdin closes, so
stopping, quitting, a crash or a dropped connection leaves nothing behind.
"""

from __future__ import annotations

import abc
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol

from kumotui.backends.process import Launcher
from kumotui.backends.samples import Role, Sample, Summary
from kumotui.errors import KumotuiError


class Job(abc.ABC):
    """A sink or generator process of some backend, behind one interface."""

    role: Role = "generator"
    backend = "builtin"
    """The name of the backend the job belongs to (a :class:`~kumotui.backends.Backend` value)."""
    port = 0
    """The port a sink listens on once ready (0 for a generator, or a sink not ready yet)."""

    def __init__(
        self,
        launcher: Launcher,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        name: str = "",
        remove_after: Path | None = None,
    ) -> None:
        self.launcher = launcher
        self.process = launcher.process(argv, env=env, name=name, remove_after=remove_after)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._ended = threading.Event()
        self._error: str | None = None
        self._started_at = 0.0
        self.ended_at: float | None = None
        """When the process's output ended (it exited), on the monotonic clock; None while it runs."""

    @property
    def pid(self) -> int | None:
        """The local PID of the job's process: its watchdog here (signal it to stop the job), ssh for a remote job."""
        return self.process.pid

    @property
    def log(self) -> list[str]:
        """The job's raw output, newest last (bounded)."""
        return list(self.process.log)

    def log_since(self, cursor: int) -> tuple[int, list[str]]:
        """Output lines after ``cursor`` and the new cursor (start with 0); see :meth:`ChildProcess.log_since`."""
        return self.process.log_since(cursor)

    def failures_so_far(self) -> dict[str, int]:
        """Failure reasons and counts while the job runs, in the backend's own words (empty when unknown).

        The live hints read these (EADDRNOTAVAIL, EMFILE) before any summary exists.
        """
        return {}

    @property
    def where(self) -> str:
        """``local`` or the remote host's name."""
        return self.launcher.name

    def start(self) -> Job:
        """Start the process; output parsing begins at once."""
        self._started_at = time.monotonic()
        self.process.start(self._stdout, self._stderr)
        return self

    @property
    def started_at(self) -> float:
        """When :meth:`start` launched the process, on the monotonic clock."""
        return self._started_at

    def elapsed(self) -> float:
        """Seconds since start on our clock."""
        return time.monotonic() - self._started_at

    def _stdout(self, data: bytes) -> None:
        if not data:
            if self.ended_at is None:
                self.ended_at = time.monotonic()
            self._ended.set()
            self._ready.set()  # wake a waiter: it will see the exit
            return
        with self._lock:
            self.on_stdout(data)

    def _stderr(self, data: bytes) -> None:
        if data:
            with self._lock:
                self.on_stderr(data)

    def on_stdout(self, data: bytes) -> None:
        """Parse a chunk of stdout (called with the lock held)."""

    def on_stderr(self, data: bytes) -> None:
        """Parse a chunk of stderr (called with the lock held)."""

    def fail(self, reason: str) -> None:
        """Record why the job cannot go on (called with the lock held)."""
        if self._error is None:
            self._error = reason
        self._ready.set()

    def mark_ready(self) -> None:
        """The job accepts work now."""
        self._ready.set()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until ready; KumotuiError with the job's own reason otherwise."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            self.poll_ready()
            if time.monotonic() > deadline:
                self.stop()
                raise KumotuiError(f"{self.describe()} did not become ready within {timeout:g} s")
        if self._error or (self._ended.is_set() and not self.ready_on_exit()):
            reason = self._error or f"exited with status {self.process.returncode}: {self.tail()}"
            self.stop()
            raise KumotuiError(f"{self.describe()} failed to start: {reason}")

    def poll_ready(self) -> None:
        """Hook for jobs whose readiness is polled (kumod's liveness URL)."""

    def ready_on_exit(self) -> bool:
        """Whether a job that already exited still counts as having started
        (a generator may finish a tiny run before we look)."""
        return False

    def tail(self, lines: int = 3) -> str:
        """The last lines of output, for error messages."""
        return " | ".join(self.log[-lines:]) or "no output"

    @property
    def finished(self) -> bool:
        """The process exited and its output has been read."""
        return self._ended.is_set() and not self.process.running

    def wait_finished(self, timeout: float) -> bool:
        """Block until :attr:`finished`; False if ``timeout`` seconds pass first.

        For callers with no clock of their own to poll on (scripts, tests);
        the CLI and the app poll :attr:`finished` instead. Stops nothing.
        """
        deadline = time.monotonic() + timeout
        if not self._ended.wait(timeout):
            return False
        proc = self.process.proc
        if proc is not None:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    @property
    def error(self) -> str | None:
        """Why the job failed, if it did."""
        return self._error

    @abc.abstractmethod
    def reading(self) -> Sample | None:
        """The latest sample on the caller's clock, or None before the first."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop gracefully, then forcefully; safe to call twice."""
        self.process.stop(timeout)

    @abc.abstractmethod
    def summary(self, series: list[Sample]) -> Summary | None:
        """The final result, from the job's own output or from ``series``."""

    def describe(self) -> str:
        """A short name for messages: ``builtin sink on local``."""
        return f"{self.backend} {self.role} on {self.where}"


# --- kumotui's own engines -----------------------------------------------------------


# --- KumoMTA: kumod with a sink policy, and traffic-gen -----------------------------


# --- Postfix: smtp-sink and smtp-source ------------------------------------------------


class StderrReader(Protocol):
    """A tool's output parser, as far as :class:`ParsedGeneratorJob` needs it."""

    def feed_stderr(self, data: bytes) -> None:
        """Read a chunk of the tool's stderr."""
        ...


class ParsedGeneratorJob(Job):
    """A third-party generator whose output a parser reads (traffic-gen, smtp-source).

    Such tools have no readiness line: they start sending at once, so the
    job is ready as soon as it starts, and a tool that already finished a
    tiny run still counts as started. Subclasses set ``_parser`` (with
    ``feed_stderr``) before any output can arrive.
    """

    role: Role = "generator"
    _parser: StderrReader

    def __init__(
        self, launcher: Launcher, argv: list[str], *, env: dict[str, str] | None = None, name: str = ""
    ) -> None:
        super().__init__(launcher, argv, env=env, name=name)
        self.mark_ready()

    def on_stderr(self, data: bytes) -> None:
        self._parser.feed_stderr(data)

    def ready_on_exit(self) -> bool:
        return True
