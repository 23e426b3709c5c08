"""One job model for every benchmark backend, local or over SSH.

A :class:`Job` is one OS process (a sink or a generator) of some backend:
kumotui's own engines, KumoMTA's kumod and traffic-gen, or Postfix's
smtp-sink and smtp-source. Every job is driven the same way: ``start()``,
``wait_ready()``, ``reading()`` polled on the caller's clock (one
:class:`~kumotui.samples.Sample` type for all), ``stop()`` (graceful, then
forceful, by PID) and ``summary()``; its raw output is kept in a bounded
log. The CLI and the UI use only this model.

Processes are started from argument lists, never shell text. A remote job
runs under a small watchdog over SSH that stops it when the channel closes,
so stopping, quitting or a dropped connection leaves nothing behind there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kumotui.backends import LineSplitter
from kumotui.errors import KumotuiError
from kumotui.samples import RateWindow, Role, Sample, Summary, active_summary

LOG_LINES = 2000
"""Raw output lines kept per job: enough to read an error, bounded for long runs."""

ENGINES_DIR = Path(__file__).resolve().parent / "engines"
WATCHDOG = Path(__file__).resolve().parent / "watchdog.py"


# --- processes ----------------------------------------------------------------------


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


# --- where jobs run -----------------------------------------------------------------


class Launcher:
    """Runs argument lists on this machine."""

    name = "local"
    remote = False
    log_lines = LOG_LINES
    """Output lines each of this launcher's processes keeps (see :class:`ChildProcess`)."""

    def __init__(self, *, log_lines: int = LOG_LINES) -> None:
        """A local launcher; ``log_lines`` bounds each process's log (the live screen keeps fewer)."""
        self.log_lines = log_lines

    def wrap(self, argv: list[str]) -> list[str]:
        """The argv that runs ``argv`` where this launcher runs things."""
        return argv

    def engine(self, module: str) -> list[str]:
        """The command that runs one of kumotui's engines (``smtp_sink``, ``smtp_gen``)."""
        return [sys.executable, "-m", f"kumotui.engines.{module}"]

    def process(self, argv: list[str], env: dict[str, str] | None = None, name: str = "") -> ChildProcess:
        """A child for ``argv`` (not started yet)."""
        child = ChildProcess(self.wrap(argv), env=env, name=name or Path(argv[0]).name, log_lines=self.log_lines)
        child.remote = self.remote
        return child


class SshLauncher(Launcher):
    """Runs argument lists on a remote host through the system ssh client.

    kumotui's engines and the watchdog are stdlib-only files: they are
    copied to a directory named by their content hash on the remote host
    (once per content), so a host with Python 3 but no kumotui can run them.
    """

    remote = True

    def __init__(self, host: Any) -> None:
        from kumotui.remote import RemoteHost, ssh_options  # plumbum only when SSH is used

        if not isinstance(host, RemoteHost):
            raise TypeError("SshLauncher needs a RemoteHost")
        self.host = host
        self.name = host.name
        self._options = ssh_options()
        spec = host.spec
        if spec.port:
            self._options += ["-p", str(spec.port)]
        if spec.user:
            self._options += ["-l", spec.user]
        if spec.identity:
            self._options += ["-i", str(spec.identity), "-o", "IdentitiesOnly=yes"]
        self._dir: str | None = None

    def _shipped(self) -> str:
        """Copy the engines and the watchdog over once; return the remote directory."""
        if self._dir is None:
            files = {p.name: p.read_text(encoding="utf-8") for p in (*ENGINES_DIR.glob("smtp_*.py"), WATCHDOG)}
            digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
            directory = f"{tempfile.gettempdir()}/kumotui-engines-{digest}"
            for name, text in files.items():
                self.host.replace_file(Path(directory) / name, text, mode=0o644)
            self._dir = directory
        return self._dir

    def wrap(self, argv: list[str]) -> list[str]:
        """``ssh HOST -- python3 watchdog.py ARGV``; the remote command is quoted word by word."""
        python = str(self.host.python.executable)
        remote = [python, "-u", f"{self._shipped()}/watchdog.py", "--", *argv]
        return ["ssh", *self._options, self.host.spec.host, "--", shlex.join(remote)]

    def engine(self, module: str) -> list[str]:
        """The shipped engine file, run by the remote Python."""
        return [str(self.host.python.executable), "-u", f"{self._shipped()}/{module}.py"]


# --- the job base -------------------------------------------------------------------


class Job:
    """A sink or generator process of some backend, behind one interface."""

    role: Role = "generator"
    backend = "builtin"

    def __init__(
        self, launcher: Launcher, argv: list[str], *, env: dict[str, str] | None = None, name: str = ""
    ) -> None:
        self.launcher = launcher
        self.process = launcher.process(argv, env=env, name=name)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._ended = threading.Event()
        self._error: str | None = None
        self._started_at = 0.0

    @property
    def pid(self) -> int | None:
        """The local PID of the job's process (ssh for a remote job)."""
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

    def elapsed(self) -> float:
        """Seconds since start on our clock."""
        return time.monotonic() - self._started_at

    def _stdout(self, data: bytes) -> None:
        if not data:
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

    def reading(self) -> Sample | None:
        """The latest sample on the caller's clock, or None before the first."""
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        """Stop gracefully, then forcefully; safe to call twice."""
        self.process.stop(timeout)

    def summary(self, series: list[Sample]) -> Summary | None:
        """The final result, from the job's own output or from ``series``."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short name for messages: ``builtin sink on local``."""
        return f"{self.backend} {self.role} on {self.where}"


# --- kumotui's own engines -----------------------------------------------------------


class EngineJob(Job):
    """A built-in engine: JSON lines on stdout (ready, progress, summary, error)."""

    module = ""

    def __init__(self, launcher: Launcher, args: list[str]) -> None:
        super().__init__(
            launcher,
            [*launcher.engine(self.module), *args, "--exit-on-stdin-eof"],
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            name=self.module,
        )
        self._splitter = LineSplitter()
        self.ready_info: dict[str, Any] = {}
        self.last: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        self._rates = RateWindow(3.0)
        self.echo: Callable[[str], None] | None = None
        """Called with every JSON line as it arrives (``kumotui sink`` passes them through)."""

    def on_stdout(self, data: bytes) -> None:
        for line in self._splitter.feed(data):
            if not line.startswith("{"):
                continue
            if self.echo is not None:
                self.echo(line)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            kind = message.get("type")
            if kind == "ready":
                self.ready_info = message
                self.mark_ready()
            elif kind == "progress":
                self.last = message
            elif kind == "summary":
                self.final = message
                self.last = message
            elif kind == "error":
                self.fail(str(message.get("error")))

    def ready_on_exit(self) -> bool:
        return self.final is not None

    count_field = ""
    """The engine's cumulative counter: ``received`` (sink) or ``sent`` (generator)."""
    failed_field = ""

    def reading(self) -> Sample | None:
        """The engine's latest line as a sample; a zero sample once ready, before the first line."""
        with self._lock:
            last = self.last if self.last is not None else ({} if self.ready_info else None)
        if last is None:
            return None
        elapsed = self.elapsed()
        count = int(last.get(self.count_field, 0))
        return Sample(
            self.role,
            elapsed,
            count,
            int(last.get(self.failed_field, 0)),
            last.get("connections"),
            self._rates.add(elapsed, count),
            last.get("latency_ms"),
            last.get("bytes"),
        )


class BuiltinSinkJob(EngineJob):
    """kumotui's SMTP sink."""

    role: Role = "sink"
    module = "smtp_sink"
    count_field = "received"
    failed_field = "rejected"

    @property
    def port(self) -> int:
        """The port it listens on (useful with ``--listen HOST:0``)."""
        return int(self.ready_info.get("port", 0))

    def summary(self, series: list[Sample]) -> Summary | None:
        if not series:
            return None
        failures = {}
        if self.final:
            failures = {
                k: int(self.final[k])
                for k in ("rejected_4xx", "rejected_5xx", "aborted", "timeouts")
                if self.final.get(k)
            }
        return active_summary("sink", series, failures=failures)


class BuiltinGenJob(EngineJob):
    """kumotui's SMTP generator."""

    role: Role = "generator"
    module = "smtp_gen"
    count_field = "sent"
    failed_field = "failed"

    def failures_so_far(self) -> dict[str, int]:
        with self._lock:
            last = self.last or {}
            return {**last.get("failed_by", {}), **last.get("connect_errors", {})}

    def summary(self, series: list[Sample]) -> Summary | None:
        final = self.final
        if final is None:
            return None
        failures = {**final.get("failed_by", {}), **final.get("connect_errors", {})}
        failed = int(final.get("failed", 0))
        unsent = int(final.get("unsent", 0)) + int(final.get("unfinished", 0))
        ok = failed == 0 and unsent == 0 and int(final.get("sent", 0)) > 0
        reason = "" if ok else f"{failed:,} failed, {unsent:,} not sent" + (" (interrupted)" if self._error else "")
        return Summary.build(
            "generator",
            count=int(final.get("sent", 0)),
            failed=failed,
            elapsed=float(final.get("elapsed", 0.0)),
            msgs_per_s=final.get("msgs_per_s"),
            bytes=final.get("bytes"),
            latency_ms=final.get("latency_ms"),
            failures=failures,
            ok=ok,
            reason=reason,
        )


# --- KumoMTA: kumod with a sink policy, and traffic-gen -----------------------------


class KumodSinkJob(Job):
    """kumod running kumotui's sink policy.

    Readiness is the liveness URL answering 200 (never "initialization
    complete" alone: a failed start can print it too); a ``problem
    initializing`` line fails the start with its text. Counters come from
    ``/metrics``, polled by :meth:`reading` (about once a second is enough).
    """

    role: Role = "sink"
    backend = "kumomta"

    def __init__(
        self,
        launcher: Launcher,
        kumod: str,
        policy: Path,
        *,
        http_port: int,
        port: int,
        http_host: str = "127.0.0.1",
        user: str = "kumod",
    ) -> None:
        from kumotui.backends import kumomta

        argv = kumomta.kumod_command(kumod, policy, as_root=_root(launcher), user=user)
        super().__init__(launcher, argv, name="kumod")
        self.port = port
        self.http = (http_host, http_port)
        self._stderr_parser = kumomta.KumodStderr()
        self._sampler = kumomta.KumodSinkSampler()
        self._latest: Sample | None = None

    def on_stderr(self, data: bytes) -> None:
        self._stderr_parser.feed(data)
        if self._stderr_parser.failure:
            self.fail(self._stderr_parser.failure)

    def poll_ready(self) -> None:
        from kumotui.backends import kumomta

        if self._error is None and kumomta.check_liveness(*self.http, timeout=0.5).ready:
            self.mark_ready()

    def ready_on_exit(self) -> bool:
        return False

    def reading(self) -> Sample | None:
        from kumotui.backends import kumomta

        try:
            text = kumomta.fetch_metrics(*self.http, timeout=1.0)
        except KumotuiError:
            return self._latest
        self._latest = self._sampler.update(self.elapsed(), text)
        return self._latest

    def summary(self, series: list[Sample]) -> Summary | None:
        return active_summary("sink", series) if series else None


class TrafficGenJob(Job):
    """KumoMTA's traffic-gen; success is judged from its output, not its exit status."""

    role: Role = "generator"
    backend = "kumomta"

    def __init__(self, launcher: Launcher, argv: list[str], *, messages: int | None, body_size: int) -> None:
        from kumotui.backends import kumomta

        super().__init__(launcher, argv, name="traffic-gen")
        self._parser = kumomta.TrafficGenOutput(expected_messages=messages, body_size=body_size)
        self._latest: Sample | None = None
        self._rates = RateWindow(3.0)
        self.mark_ready()  # traffic-gen has no readiness: it starts sending at once

    def on_stdout(self, data: bytes) -> None:
        for sample in self._parser.feed_stdout(data, self.elapsed()):
            self._latest = sample

    def on_stderr(self, data: bytes) -> None:
        self._parser.feed_stderr(data)

    def failures_so_far(self) -> dict[str, int]:
        with self._lock:
            return dict(self._parser.failures)

    def ready_on_exit(self) -> bool:
        return True

    def reading(self) -> Sample | None:
        with self._lock:
            latest = self._latest
        if latest is None:
            return None
        elapsed = self.elapsed()
        return Sample(
            "generator",
            elapsed,
            latest.count,
            latest.failed,
            latest.connections,
            self._rates.add(elapsed, latest.count),
            None,
            latest.bytes,
        )

    def summary(self, series: list[Sample]) -> Summary | None:
        with self._lock:
            return self._parser.finish(self.elapsed())


# --- Postfix: smtp-sink and smtp-source ------------------------------------------------


class PostfixSinkJob(Job):
    """Postfix's smtp-sink with its ``-c`` counters; ready when it accepts TCP."""

    role: Role = "sink"
    backend = "postfix"

    def __init__(self, launcher: Launcher, argv: list[str], env: dict[str, str], address: tuple[str, int]) -> None:
        from kumotui.backends import postfix

        super().__init__(launcher, argv, env=env, name="smtp-sink")
        self.address = address
        self.port = address[1]
        self._parser = postfix.SmtpSinkOutput()

    def on_stdout(self, data: bytes) -> None:
        self._parser.feed_stdout(data)

    def on_stderr(self, data: bytes) -> None:
        self._parser.feed_stderr(data)
        if self._parser.fatal:
            self.fail(self._parser.fatal)

    def poll_ready(self) -> None:
        from kumotui.backends import tcp_accepts

        if self._error is None and self.process.running and tcp_accepts(*self.address, timeout=0.2):
            self.mark_ready()

    def reading(self) -> Sample | None:
        with self._lock:
            return self._parser.sample(self.elapsed())

    def summary(self, series: list[Sample]) -> Summary | None:
        with self._lock:
            return self._parser.finish(series) if series else None


class PostfixSourceJob(Job):
    """Postfix's smtp-source with its ``-c`` counter."""

    role: Role = "generator"
    backend = "postfix"

    def __init__(
        self, launcher: Launcher, argv: list[str], env: dict[str, str], *, messages: int, body_size: int
    ) -> None:
        from kumotui.backends import postfix

        super().__init__(launcher, argv, env=env, name="smtp-source")
        self._parser = postfix.SmtpSourceOutput(expected_messages=messages, body_size=body_size)
        self._ended_at: float | None = None
        self.mark_ready()

    def on_stdout(self, data: bytes) -> None:
        self._parser.feed_stdout(data)

    def on_stderr(self, data: bytes) -> None:
        self._parser.feed_stderr(data)

    def failures_so_far(self) -> dict[str, int]:
        with self._lock:
            return dict(self._parser.failures)

    def ready_on_exit(self) -> bool:
        return True

    def reading(self) -> Sample | None:
        with self._lock:
            return self._parser.sample(self.elapsed())

    def summary(self, series: list[Sample]) -> Summary | None:
        with self._lock:
            elapsed = series[-1].elapsed if series else self.elapsed()
            return self._parser.finish(elapsed)


def _root(launcher: Launcher) -> bool:
    """Whether jobs run as root where the launcher runs them."""
    host = getattr(launcher, "host", None)
    return bool(host.is_root()) if host is not None else os.geteuid() == 0
