"""Run the built-in sink and generator as child processes and read their JSON lines.

Why a separate module: the engines must stay standalone (they are shipped to
remote hosts), and the CLI must stay thin. This is the one place that starts
an engine, turns its stdout into samples, checks user input before anything
runs, and makes sure no child outlives us (SIGTERM, then SIGKILL, by PID;
plus ``--exit-on-stdin-eof`` so a child whose parent died stops by itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from kumotui.engines import smtp_gen
from kumotui.errors import KumotuiError

Sample = dict[str, Any]
"""One parsed JSON line of an engine: ``type`` is ready, progress, summary or error."""

SINK_MODULE = "kumotui.engines.smtp_sink"
GEN_MODULE = "kumotui.engines.smtp_gen"


class EngineProcess:
    """One engine child process and the JSON samples it prints.

    A reader thread drains stdout (so a chatty child never blocks on a full
    pipe) into a bounded queue; stderr is kept as a bounded log for error
    messages. The child gets its own session, so a terminal's Ctrl+C reaches
    only us and we stop it in order.
    """

    def __init__(self, module: str, args: list[str], *, queue_size: int = 10000) -> None:
        self.argv = [sys.executable, "-m", module, *args, "--exit-on-stdin-eof"]
        self._samples: deque[Sample] = deque(maxlen=queue_size)
        self._log: deque[str] = deque(maxlen=200)
        self._cond = threading.Condition()
        self._eof = False
        self.proc: subprocess.Popen[str] | None = None
        self.summary: Sample | None = None
        self.latest: Sample | None = None

    @property
    def pid(self) -> int | None:
        """The child's PID while it runs."""
        return self.proc.pid if self.proc is not None else None

    def start(self) -> EngineProcess:
        """Start the child (argument list, never a shell string)."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._read_stdout, args=(self.proc.stdout,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self.proc.stderr,), daemon=True).start()
        return self

    def _read_stdout(self, stream: IO[str]) -> None:
        for raw in stream:
            line = raw.strip()
            if not line:
                continue
            try:
                sample = json.loads(line)
            except ValueError:
                self._log.append(line)
                continue
            if not isinstance(sample, dict):
                continue
            with self._cond:
                if sample.get("type") == "summary":
                    self.summary = sample
                elif sample.get("type") == "progress":
                    self.latest = sample
                self._samples.append(sample)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self, stream: IO[str]) -> None:
        for raw in stream:
            self._log.append(raw.rstrip())

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of stderr and non-JSON output, for error messages."""
        return "\n".join(list(self._log)[-lines:])

    def next_sample(self, timeout: float | None = None) -> Sample | None:
        """The next sample, or None at EOF (or after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._samples:
                if self._eof:
                    return None
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(wait if wait is not None else 0.5)
            return self._samples.popleft()

    def samples(self) -> Iterator[Sample]:
        """Every sample until the child's stdout ends."""
        while True:
            sample = self.next_sample()
            if sample is None:
                return
            yield sample

    def wait_ready(self, timeout: float = 30.0) -> Sample:
        """The ``ready`` sample; ``KumotuiError`` with the engine's reason otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            sample = self.next_sample(max(0.0, deadline - time.monotonic()))
            if sample is None:
                self.stop()
                if time.monotonic() >= deadline:
                    raise KumotuiError(f"{self._name()} did not start within {timeout:g} s")
                detail = self.log_tail() or f"exit status {self.returncode()}"
                raise KumotuiError(f"{self._name()} failed to start: {detail}")
            kind = sample.get("type")
            if kind == "ready":
                return sample
            if kind == "error":
                self.stop()
                raise KumotuiError(str(sample.get("error")))

    def _name(self) -> str:
        return self.argv[2].rsplit(".", 1)[-1]

    def returncode(self) -> int | None:
        """The exit status once the child has ended."""
        return self.proc.poll() if self.proc is not None else None

    def stop(self, timeout: float = 5.0) -> Sample | None:
        """SIGTERM by PID, wait, SIGKILL if needed; return the final summary if any.

        Safe to call twice and on a child that already ended.
        """
        proc = self.proc
        if proc is None:
            return self.summary
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        with self._cond:
            deadline = time.monotonic() + 2.0
            while not self._eof and time.monotonic() < deadline:
                self._cond.wait(0.1)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return self.summary

    def __enter__(self) -> EngineProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- input checks --------------------------------------------------------------------


def parse_size(text: str, flag: str = "--body-size") -> int:
    """A size such as ``1000``, ``1KB``, ``100KB``, ``1MiB``; KumotuiError otherwise."""
    try:
        return smtp_gen.parse_size(text, flag)
    except smtp_gen.StartError as error:
        raise KumotuiError(str(error)) from None


def check_target(text: str, allow_remote: bool) -> str:
    """Refuse a target outside loopback and private ranges unless allowed.

    Checked here, before any process starts, and again inside the engine.
    """
    try:
        host, port = smtp_gen.parse_target(text)
        smtp_gen.resolve_target(host, port, allow_remote)
    except smtp_gen.StartError as error:
        raise KumotuiError(str(error)) from None
    return text


@dataclass(frozen=True)
class BenchOptions:
    """A validated benchmark request, as the CLI (or later the UI) builds it."""

    target: str | None
    local_sink: bool
    messages: int | None = None
    duration: float | None = None
    concurrency: int = 50
    body_size: int = 1000
    rate: float | None = None
    workers: int = 1
    sink_workers: int = 1
    pipelining: bool = True
    per_connection: int = 1000
    connect_timeout: float = 5.0
    recipient: str | None = None
    allow_remote_target: bool = False
    extra_gen_args: tuple[str, ...] = field(default_factory=tuple)

    def validate(self) -> BenchOptions:
        """Every flag checked up front, each error naming its flag."""
        checks = [
            (self.local_sink != (self.target is not None), "give exactly one of --target or --local-sink"),
            (self.messages is None or self.messages >= 1, "--messages must be at least 1"),
            (self.duration is None or 0 < self.duration < float("inf"), "--duration must be positive seconds"),
            (1 <= self.concurrency <= 100000, "--concurrency must be within 1-100000"),
            (self.rate is None or 0 < self.rate < float("inf"), "--rate must be positive messages per second"),
            (1 <= self.workers <= 256, "--workers must be within 1-256"),
            (1 <= self.sink_workers <= 256, "--sink-workers must be within 1-256"),
            (self.per_connection >= 0, "--messages-per-connection must be 0 or more"),
            (0 < self.connect_timeout <= 600, "--connect-timeout must be within 0-600 s"),
        ]
        for ok, message in checks:
            if not ok:
                raise KumotuiError(message)
        if self.target is not None:
            check_target(self.target, self.allow_remote_target)
        if self.recipient is not None:
            try:
                smtp_gen.check_recipient_domain(self.recipient.rpartition("@")[2])
            except smtp_gen.StartError as error:
                raise KumotuiError(f"--recipient: {error}") from None
        return self

    def gen_args(self, target: str) -> list[str]:
        """The generator's command line for this request."""
        args = [
            "--target",
            target,
            "--concurrency",
            str(self.concurrency),
            "--body-size",
            str(self.body_size),
            "--workers",
            str(self.workers),
            "--messages-per-connection",
            str(self.per_connection),
            "--connect-timeout",
            f"{self.connect_timeout:g}",
        ]
        if self.messages is not None:
            args += ["--messages", str(self.messages)]
        if self.duration is not None:
            args += ["--duration", f"{self.duration:g}"]
        if self.rate is not None:
            args += ["--rate", f"{self.rate:g}"]
        if not self.pipelining:
            args.append("--no-pipelining")
        if self.recipient:
            args += ["--recipient", self.recipient]
        if self.allow_remote_target:
            args.append("--allow-remote-target")
        return args + list(self.extra_gen_args)


@dataclass
class BenchResult:
    """What a run produced: the generator's summary and, with a local sink, the sink's."""

    summary: Sample
    sink: Sample | None = None
    target: str = ""
    interrupted: bool = False

    def as_json(self) -> Sample:
        """One object for ``--json``: the generator summary plus target and sink."""
        out = dict(self.summary)
        out.pop("latency_histogram", None)
        out["target"] = self.target
        if self.sink is not None:
            out["sink"] = self.sink
        if self.interrupted:
            out["interrupted"] = True
        return out


def run_bench(opts: BenchOptions, on_progress: Callable[[Sample], None] | None = None) -> BenchResult:
    """Run one benchmark to its end; Ctrl+C stops it early with a partial summary.

    With ``local_sink`` a sink starts on a free loopback port first and is
    stopped afterwards; its own counts come back alongside, so a reader can
    compare sent with received.
    """
    opts.validate()
    sink: EngineProcess | None = None
    gen: EngineProcess | None = None
    interrupted = False
    previous: Any = None
    try:
        target = opts.target or ""
        if opts.local_sink:
            sink = EngineProcess(SINK_MODULE, sink_args("127.0.0.1:0", opts.sink_workers)).start()
            ready = sink.wait_ready()
            target = f"127.0.0.1:{ready['port']}"
        previous = signal.signal(signal.SIGTERM, _interrupt)
        gen = EngineProcess(GEN_MODULE, opts.gen_args(target)).start()
        gen.wait_ready()
        try:
            for sample in gen.samples():
                if sample.get("type") == "progress" and on_progress is not None:
                    on_progress(sample)
                elif sample.get("type") == "error":
                    raise KumotuiError(str(sample.get("error")))
        except KeyboardInterrupt:
            interrupted = True
        summary = gen.stop()
        if summary is None:
            raise KumotuiError(f"the generator ended without a summary: {gen.log_tail() or 'no output'}")
        sink_summary = sink.stop() if sink is not None else None
        return BenchResult(summary, sink_summary, target, interrupted)
    finally:
        for engine in (gen, sink):
            if engine is not None:
                engine.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def sink_args(
    listen: str,
    workers: int = 1,
    *,
    tempfail_percent: float = 0.0,
    permfail_percent: float = 0.0,
    max_message_size: int | None = None,
    idle_timeout: float | None = None,
) -> list[str]:
    """The sink's command line."""
    args = ["--listen", listen, "--workers", str(workers)]
    if tempfail_percent:
        args += ["--tempfail-percent", f"{tempfail_percent:g}"]
    if permfail_percent:
        args += ["--permfail-percent", f"{permfail_percent:g}"]
    if max_message_size is not None:
        args += ["--max-message-size", str(max_message_size)]
    if idle_timeout is not None:
        args += ["--idle-timeout", f"{idle_timeout:g}"]
    return args


def check_sink_options(listen: str, workers: int, tempfail: float, permfail: float, idle: float) -> None:
    """Refuse nonsense sink flags before starting anything."""
    _host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise KumotuiError(f"--listen {listen!r}: expected ADDR:PORT, e.g. 127.0.0.1:2026")
    checks = [
        (1 <= workers <= 256, "--workers must be within 1-256"),
        (0 <= tempfail <= 100, "--tempfail-percent must be within 0-100"),
        (0 <= permfail <= 100, "--permfail-percent must be within 0-100"),
        (tempfail + permfail <= 100, "--tempfail-percent plus --permfail-percent must not exceed 100"),
        (idle > 0, "--idle-timeout must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise KumotuiError(message)


def human_summary(result: BenchResult) -> str:
    """The final report for people: counts, rates, latency, and the sink's view."""
    s = result.summary
    lat = s.get("latency_ms", {})
    failed_by = ", ".join(f"{k} {v:,}" for k, v in sorted(s.get("failed_by", {}).items()))
    connect = ", ".join(f"{k} {v:,}" for k, v in sorted(s.get("connect_errors", {}).items()))
    lines = [
        f"target      {result.target}" + (" (built-in sink)" if result.sink is not None else ""),
        f"sent        {s.get('sent', 0):,}",
        f"failed      {s.get('failed', 0):,}" + (f"  ({failed_by})" if failed_by else ""),
    ]
    if connect:
        lines.append(f"connect     errors: {connect}")
    if s.get("unfinished") or s.get("unsent"):
        lines.append(f"not done    unfinished {s.get('unfinished', 0):,}, unsent {s.get('unsent', 0):,}")
    lines += [
        f"elapsed     {s.get('elapsed', 0):.2f} s",
        f"rate        {s.get('msgs_per_s', 0):,.0f} msgs/s  {s.get('mmh', 0):.3f} MMH  {s.get('mb_per_s', 0):.2f} MB/s",
        "latency     " + "  ".join(f"{k} {lat.get(k, 0):.2f} ms" for k in ("p50", "p90", "p95", "p99", "max")),
    ]
    if result.sink is not None:
        k = result.sink
        lines.append(f"sink        received {k.get('received', 0):,}, rejected {k.get('rejected', 0):,}")
    if result.interrupted:
        lines.append("interrupted: the counts above are partial")
    return "\n".join(lines)


def progress_line(sample: Sample) -> str:
    """One short live line for a terminal."""
    lat = sample.get("latency_ms", {})
    return (
        f"{sample.get('elapsed', 0):6.1f}s  sent {sample.get('sent', 0):,}  "
        f"failed {sample.get('failed', 0):,}  {sample.get('msgs_per_s', 0):,.0f} msgs/s  "
        f"conns {sample.get('connections', 0):,}  p99 {lat.get('p99', 0):.1f} ms"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_sink(args: list[str], emit_line: Callable[[str], None]) -> Sample | None:
    """Run a sink until SIGTERM or Ctrl+C, passing its JSON lines through.

    The stop is relayed to the child as SIGTERM, and its final summary line
    is printed before we return, so ``kumotui sink`` behaves like the engine.
    """
    engine = EngineProcess(SINK_MODULE, args).start()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        emit_line(json.dumps(engine.wait_ready()))
        try:
            for sample in engine.samples():
                emit_line(json.dumps(sample))
                if sample.get("type") == "summary":
                    return sample
            raise KumotuiError(f"the sink stopped unexpectedly: {engine.log_tail() or 'no output'}")
        except KeyboardInterrupt:
            summary = engine.stop()
            if summary is not None:
                emit_line(json.dumps(summary))
            return summary
    finally:
        engine.stop()
        signal.signal(signal.SIGTERM, previous)
