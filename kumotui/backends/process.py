"""Child processes whose output streams to parsers, and where they run.

:class:`ChildProcess` is one OS process with reader threads and a bounded
log; a :class:`Launcher` turns an argument list into one, on this machine.
Remote launchers (:mod:`kumotui.hosts.launch`) wrap the same argument
lists in SSH, so backends never know where their jobs run.

Every job runs under the watchdog (:mod:`kumotui.engines.watchdog`), here as
on a remote host: kumotui holds the watchdog's stdin, so when kumotui ends in
any way, SIGKILL included, the watchdog stops the job's whole process group
and removes the job's temporary directory. The built-in engines would stop
on stdin's end by themselves; kumod, traffic-gen and Postfix's tools would
not. (A parent-death signal, ``PR_SET_PDEATHSIG``, was the other candidate:
it reaches only the direct child, not the workers it forks, cannot remove a
directory, and fires when the *thread* that started the child ends, which
for the app is a short-lived worker thread.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kumotui import engines
from kumotui.backends.lines import LineSplitter
from kumotui.errors import KumotuiError

LOG_LINES = 2000
"""Raw output lines kept per job: enough to read an error, bounded for long runs."""
WATCHDOG = Path(engines.__file__).resolve().parent / "watchdog.py"
"""Every job's lifeline (stdlib only, so it is shipped to remote hosts with the engines)."""


class ChildProcess:
    """One child process whose output bytes go to callbacks as they arrive.

    Reader threads drain stdout and stderr (a chatty child never blocks on a
    full pipe); each line also lands in a bounded log. The child gets its own
    session, so a terminal's Ctrl+C reaches only us and we stop it in order,
    and so the whole process group (engine workers included) can be signalled.
    """

    def __init__(
        self, argv: list[str], *, env: dict[str, str] | None = None, name: str = "", log_lines: int = LOG_LINES
    ) -> None:
        self.argv = argv
        self.env = env
        self.name = name or Path(argv[0]).name
        self.log: deque[str] = deque(maxlen=log_lines)
        self.logged = 0
        """Lines ever added to ``log``, so a reader can ask only for the ones it has not seen."""
        self._log_lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []

    @property
    def pid(self) -> int | None:
        """The child's PID once started."""
        return self.proc.pid if self.proc is not None else None

    def start(self, on_stdout: Callable[[bytes], None], on_stderr: Callable[[bytes], None]) -> None:
        """Start the child; raises KumotuiError when the program is missing."""
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=self.env,
            )
        except OSError as error:
            raise KumotuiError(f"cannot start {self.argv[0]}: {error.strerror}") from None
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for stream, callback in ((self.proc.stdout, on_stdout), (self.proc.stderr, on_stderr)):
            thread = threading.Thread(target=self._pump, args=(stream.fileno(), callback), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, fd: int, callback: Callable[[bytes], None]) -> None:
        lines = LineSplitter()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            callback(data)
            self._add_log([line for line in lines.feed(data) if line])
        self._add_log(lines.flush())
        callback(b"")  # end of stream

    def _add_log(self, new: list[str]) -> None:
        with self._log_lock:
            self.log.extend(new)
            self.logged += len(new)

    def log_since(self, cursor: int) -> tuple[int, list[str]]:
        """Lines added after ``cursor`` (a previous return's first item), and the new cursor.

        Both reader threads append while a live view reads; the lock keeps
        the copy consistent. Lines that already fell off the bounded log are
        skipped, never repeated.
        """
        with self._log_lock:
            fresh = min(self.logged - cursor, len(self.log))
            return self.logged, list(self.log)[len(self.log) - fresh :] if fresh > 0 else []

    @property
    def running(self) -> bool:
        """Whether the child has not exited yet."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has ended."""
        return self.proc.poll() if self.proc is not None else None

    def drained(self, timeout: float = 0.0) -> bool:
        """Whether all output has been read (after the child exited)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def stop(self, timeout: float = 5.0) -> None:
        """Close stdin, SIGTERM the group, wait, SIGKILL if needed. Idempotent.

        Closing stdin first lets an SSH-wrapped job's remote watchdog see
        end-of-file and stop the remote process gracefully.
        """
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.poll() is None and self.remote:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(min(timeout, 2.0))
        if proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait()
        self.drained(2.0)

    remote = False
    """Set for SSH-wrapped children, which get a moment to stop over the channel."""

    def _signal(self, signum: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)


@dataclass(frozen=True)
class ClockOffset:
    """How far a host's wall clock is from this machine's, as measured over the link to it.

    ``seconds`` is the host's clock minus ours; the true value lies within
    ``uncertainty`` of it (half the round trip of the best exchange).
    """

    seconds: float = 0.0
    uncertainty: float = 0.0

    @classmethod
    def estimate(cls, exchanges: Sequence[tuple[int, int, int]]) -> ClockOffset:
        """From ``(sent_ns, remote_ns, received_ns)`` exchanges: the one with the shortest round trip,
        its remote time against the midpoint of ours (as NTP's clock filter picks its sample)."""
        sent, remote, received = min(exchanges, key=lambda e: e[2] - e[0])
        return cls((remote - (sent + received) / 2) / 1e9, (received - sent) / 2e9)


class Launcher:
    """Runs argument lists on this machine."""

    name = "local"
    remote = False
    log_lines = LOG_LINES
    """Output lines each of this launcher's processes keeps (see :class:`ChildProcess`)."""

    def __init__(self, *, log_lines: int = LOG_LINES) -> None:
        """A local launcher; ``log_lines`` bounds each process's log (the live screen keeps fewer)."""
        self.log_lines = log_lines

    def wrap(self, argv: list[str], remove_after: Path | None = None) -> list[str]:
        """The argv that runs ``argv`` where this launcher runs things: under the watchdog.

        ``remove_after`` is a directory (where the job runs) that the watchdog
        removes once the job has ended, however kumotui ended.
        """
        cleanup = ["--remove-dir", str(remove_after)] if remove_after is not None else []
        return [sys.executable, str(WATCHDOG), *cleanup, "--", *argv]

    def engine(self, module: str) -> list[str]:
        """The command that runs one of kumotui's engines (``smtp_sink``, ``smtp_gen``)."""
        return [sys.executable, "-m", f"kumotui.engines.{module}"]

    def ship(self, path: Path) -> str:
        """Where the next engine this launcher starts finds the data file ``path`` (a responses file).

        Here it is the file itself; a remote launcher copies it beside the engine first.
        """
        return str(path)

    @property
    def address(self) -> str:
        """The address other machines' jobs reach this launcher's jobs at (a started sink)."""
        return "127.0.0.1"

    @property
    def home_address(self) -> str:
        """The address this launcher's jobs reach the machine kumotui runs on at (a sink started here)."""
        return "127.0.0.1"

    def is_root(self) -> bool:
        """Whether jobs run as root where this launcher runs them (kumod then needs ``--user``)."""
        return os.geteuid() == 0

    def close(self) -> None:
        """Release what the launcher keeps between jobs (nothing here)."""

    def clock_offset(self) -> ClockOffset:
        """Where jobs run, the wall clock's offset from this machine's (here: the same clock)."""
        return ClockOffset()

    def process(
        self, argv: list[str], env: dict[str, str] | None = None, name: str = "", remove_after: Path | None = None
    ) -> ChildProcess:
        """A child for ``argv`` (not started yet); see :meth:`wrap` for ``remove_after``."""
        child = ChildProcess(
            self.wrap(argv, remove_after), env=env, name=name or Path(argv[0]).name, log_lines=self.log_lines
        )
        child.remote = self.remote
        return child
