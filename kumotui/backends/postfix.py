"""The Postfix backend: smtp-sink and smtp-source, Postfix's own test tools.

They are small C programs, fast enough to measure most hosts and present
wherever Postfix is installed. Their only live output is a counter that
redraws itself with ``\\r`` (smtp-source: ``N\\r`` per message, then
``\\n`` at the end; smtp-sink: ``sess=N quit=N mesg=N\\r``), so rates come
from sampling those counters on the job's clock.

Facts checked against Postfix 3.7 (Debian's build): as root smtp-sink
refuses to start without ``-u USER``; smtp-sink accepts only 256
connections unless given ``-m``; smtp-source stops at the first rejected
reply (``fatal: data rejected: 450 ...``, exit 1) unless given ``-A``, which
turns each rejection into a ``warning:`` line and leaves it out of the
counter; neither prints anything when it is ready or when it starts.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kumotui.backends import Backend, LoadRequest, SinkRequest
from kumotui.backends.job import Job, ParsedGeneratorJob
from kumotui.backends.lines import LineSplitter, parse_size, strip_ansi, tcp_accepts
from kumotui.backends.process import Launcher
from kumotui.backends.samples import RateWindow, Role, Sample, Summary, active_summary
from kumotui.errors import KumotuiError

ENV_DIR = "KUMOTUI_POSTFIX_DIR"
SINK_PORT = 2026
"""Where a started smtp-sink listens unless asked: the port KumoMTA's sink uses, so routing snippets agree."""
"""A directory holding the tools, or a root with ``usr/sbin`` (an extracted package)."""
SYSTEM_DIRS = (Path("/usr/sbin"), Path("/usr/local/sbin"), Path("/usr/lib/postfix/sbin"))
"""Where packages put the tools; often not on a non-root user's PATH."""
TOOLS = ("smtp-sink", "smtp-source")
SMTP_SINK_DEFAULT_MAX = 256
"""smtp-sink's own connection limit when not given ``-m``."""
DEFAULT_SINK_USER = "nobody"
"""The account smtp-sink runs as (``-u``) when started as root."""
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_SUFFIXES = (".test", ".invalid", ".example", ".localhost")
DEFAULT_SENDER = "kumotui@example.com"
DEFAULT_RECIPIENT = "sink@example.net"


@dataclass(frozen=True)
class PostfixTools:
    """smtp-sink and smtp-source, and the libraries they need when not installed system-wide."""

    smtp_sink: Path
    smtp_source: Path
    library_dir: Path | None = None
    """``usr/lib/postfix`` of an extracted package: Debian's tools link to
    libpostfix-*.so there, which the loader does not search by itself."""

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment to run the tools in (``LD_LIBRARY_PATH`` extended when needed)."""
        env = dict(os.environ if base is None else base)
        if self.library_dir is not None:
            current = env.get("LD_LIBRARY_PATH")
            env["LD_LIBRARY_PATH"] = f"{self.library_dir}:{current}" if current else str(self.library_dir)
        return env


def _tools_in(directory: Path) -> PostfixTools | None:
    """The tools in ``directory`` itself or in its ``usr/sbin`` or ``sbin``."""
    for sbin in (directory, directory / "usr" / "sbin", directory / "sbin"):
        if all(os.access(sbin / name, os.X_OK) for name in TOOLS):
            libs = sbin.parent / "lib" / "postfix"
            has_libs = libs.is_dir() and any(libs.glob("libpostfix-*.so*"))
            return PostfixTools(sbin / "smtp-sink", sbin / "smtp-source", libs if has_libs else None)
    return None


def find_postfix_tools(directory: Path | None = None, env: Mapping[str, str] | None = None) -> PostfixTools:
    """Find smtp-sink and smtp-source.

    Looks in ``directory`` when given, else in ``$KUMOTUI_POSTFIX_DIR`` when
    set (either may be the tools' directory or an extracted package's root),
    else on ``PATH`` and in the system sbin directories.

    Raises:
        KumotuiError: not found, naming where it looked.
    """
    environ = os.environ if env is None else env
    chosen = directory if directory is not None else (Path(environ[ENV_DIR]) if environ.get(ENV_DIR) else None)
    if chosen is not None:
        found = _tools_in(chosen)
        origin = "the given directory" if directory is not None else f"${ENV_DIR}"
        if found is None:
            raise KumotuiError(
                f"smtp-sink and smtp-source not found in {chosen} ({origin}), nor in its usr/sbin or sbin"
            )
        return found
    searched = [Path(p) for p in environ.get("PATH", "").split(os.pathsep) if p] + list(SYSTEM_DIRS)
    for sbin in searched:
        sink = shutil.which("smtp-sink", path=str(sbin))
        source = shutil.which("smtp-source", path=str(sbin))
        if sink and source:
            return PostfixTools(Path(sink), Path(source))
    raise KumotuiError(
        "smtp-sink and smtp-source not found on PATH or in "
        + ", ".join(str(d) for d in SYSTEM_DIRS)
        + f". Install Postfix (Debian: the postfix package), set ${ENV_DIR}, or choose another backend."
    )


def smtp_sink_command(
    tools: PostfixTools,
    listen: str = "127.0.0.1:2026",
    *,
    concurrency: int = SMTP_SINK_DEFAULT_MAX,
    backlog: int | None = None,
    as_root: bool | None = None,
    user: str = DEFAULT_SINK_USER,
) -> list[str]:
    """smtp-sink's argument list, with the running counter on (``-c``).

    Args:
        tools: from :func:`find_postfix_tools`.
        listen: ``host:port`` (``[::1]:port`` for IPv6).
        concurrency: the most clients expected; ``-m`` is raised to at least
            this, since smtp-sink otherwise leaves connections beyond 256
            waiting in the kernel's queue.
        backlog: the listen backlog (default: the larger of concurrency and 1024).
        as_root: whether it will run as root (default: whether this process is).
        user: the account to run as when root (``-u``, which smtp-sink requires then).
    """
    if concurrency < 1:
        raise KumotuiError(f"smtp-sink concurrency must be at least 1, not {concurrency}")
    root = os.geteuid() == 0 if as_root is None else as_root
    command = [str(tools.smtp_sink), "-c", "-m", str(max(concurrency, SMTP_SINK_DEFAULT_MAX))]
    if root:
        command += ["-u", user]
    command += [listen, str(backlog if backlog is not None else max(concurrency, 1024))]
    return command


def _reserved(address: str) -> bool:
    domain = address.rpartition("@")[2].lower().rstrip(".")
    return (
        domain in RESERVED_DOMAINS
        or any(domain.endswith("." + d) for d in RESERVED_DOMAINS)
        or domain.endswith(RESERVED_SUFFIXES)
    )


def smtp_source_command(
    tools: PostfixTools,
    target: str,
    *,
    concurrency: int = 1,
    messages: int = 1,
    body_size: str | int = 1024,
    sender: str = DEFAULT_SENDER,
    recipient: str = DEFAULT_RECIPIENT,
    reuse_connections: bool = True,
    keep_going: bool = False,
) -> list[str]:
    """smtp-source's argument list, with the running counter on (``-c``).

    Args:
        tools: from :func:`find_postfix_tools`.
        target: ``host:port`` of the sink.
        concurrency: parallel sessions (``-s``).
        messages: messages in total across all sessions (``-m``).
        body_size: payload bytes, or a size such as ``100KB`` (``-l``).
        sender: envelope sender (``-f``); must be in a reserved test domain.
        recipient: envelope recipient (``-t``); must be in a reserved test domain.
        reuse_connections: send many messages per session (``-d``), as
            traffic-gen does; without it every message opens a connection.
        keep_going: do not stop at the first rejected reply (``-A``).

    Raises:
        KumotuiError: a number is not positive, the size does not parse, or
            an address is outside the reserved test domains.
    """
    for flag, value in (("-s", concurrency), ("-m", messages)):
        if value < 1:
            raise KumotuiError(f"smtp-source {flag} must be at least 1, not {value}")
    length = parse_size(body_size)
    for what, address in (("sender", sender), ("recipient", recipient)):
        if not _reserved(address):
            raise KumotuiError(
                f"{what} {address} is not in a reserved test domain (example.com/.net/.org, .test, .invalid)"
            )
    command = [str(tools.smtp_source), "-c", "-s", str(concurrency), "-m", str(messages), "-l", str(length)]
    command += ["-f", sender, "-t", recipient]
    if reuse_connections:
        command.append("-d")
    if keep_going:
        command.append("-A")
    command.append(target)
    return command


_DIAGNOSTIC = re.compile(r"^(?:.*?smtp-(?:source|sink):\s*)?(warning|fatal|panic|error):\s*(.*)$")
_SINK_COUNTERS = re.compile(r"sess=(\d+)\s+quit=(\d+)\s+mesg=(\d+)")


def _diagnostic(line: str) -> tuple[str, str]:
    """The severity and text of a Postfix tool's stderr line, without the program name."""
    match = _DIAGNOSTIC.match(line)
    return (match.group(1), match.group(2)) if match else ("", line)


class _Diagnostics:
    """What both tools print on stderr: ``warning:`` lines (counted by text) and a fatal error."""

    def __init__(self) -> None:
        self.fatal: str | None = None
        """The first ``fatal:`` or ``panic:`` text (e.g. ``bind ... Address already in use``)."""
        self.failures: Counter[str] = Counter()
        """Other diagnostics (``warning:`` lines; under ``-A`` one per rejected transaction), by text."""
        self._stderr = LineSplitter()

    def feed_stderr(self, data: bytes) -> None:
        """Count warnings by text; remember a fatal error."""
        for line in self._stderr.feed(data):
            self._stderr_line(line)

    def _flush_stderr(self) -> None:
        for line in self._stderr.flush():
            self._stderr_line(line)

    def _stderr_line(self, raw: str) -> None:
        line = strip_ansi(raw).strip()
        if not line:
            return
        severity, text = _diagnostic(line)
        if severity in ("fatal", "panic"):
            self.fatal = self.fatal or text
        else:
            self.failures[text] += 1


class SmtpSourceOutput(_Diagnostics):
    """Incremental reader of ``smtp-source -c``'s counter and diagnostics.

    The counter prints every message, which is far too often to report, so
    feeding only updates state; the job takes a :meth:`sample` on its own
    clock (about once a second).
    """

    def __init__(self, *, expected_messages: int | None = None, body_size: int | None = None, window: float = 5.0):
        """Args: the ``-m`` and ``-l`` given, to judge the run and estimate bytes; the rate window in seconds."""
        super().__init__()
        self.expected_messages = expected_messages
        self.body_size = body_size
        self.count = 0
        self.completed = False
        """True once the final newline arrived: smtp-source ended normally."""
        self._stdout = LineSplitter()
        self._rates = RateWindow(window)

    def feed_stdout(self, data: bytes) -> None:
        """Take the latest counter value from ``data``."""
        if b"\n" in data:
            self.completed = True
        for line in reversed(self._stdout.feed(data)):
            if line.strip().isdigit():
                self.count = int(line)
                break

    @property
    def failed(self) -> int:
        """Transactions rejected so far."""
        return sum(self.failures.values())

    def sample(self, elapsed: float) -> Sample:
        """The counters now, ``elapsed`` seconds into the job."""
        return Sample(
            role="generator",
            elapsed=elapsed,
            count=self.count,
            failed=self.failed,
            rate=self._rates.add(elapsed, self.count),
            bytes=self.count * self.body_size if self.body_size is not None else None,
        )

    def finish(self, elapsed: float) -> Summary:
        """The run's summary once smtp-source has exited, timed by the job's clock.

        smtp-source prints no timing, so ``elapsed`` should run from its
        start to its exit.
        """
        for line in self._stdout.flush():
            if line.strip().isdigit():
                self.count = int(line)
        self._flush_stderr()
        ok, reason = self._verdict()
        return Summary.build(
            "generator",
            count=self.count,
            failed=self.failed,
            elapsed=elapsed,
            bytes=self.count * self.body_size if self.body_size is not None else None,
            failures=dict(self.failures) | ({f"fatal: {self.fatal}": 1} if self.fatal else {}),
            ok=ok,
            reason=reason,
        )

    def _verdict(self) -> tuple[bool, str]:
        if self.fatal:
            return False, f"smtp-source stopped: {self.fatal}"
        if not self.completed:
            return False, "smtp-source stopped before finishing (stopped early, or it crashed)"
        if self.count == 0:
            return False, "no message was sent"
        if self.failed:
            worst = self.failures.most_common(1)[0][0]
            return False, f"{self.failed:,} of {self.count + self.failed:,} transactions were rejected (e.g. {worst})"
        if self.expected_messages is not None and self.count < self.expected_messages:
            return False, f"only {self.count:,} of {self.expected_messages:,} messages were sent"
        return True, ""


class SmtpSinkOutput(_Diagnostics):
    """Incremental reader of ``smtp-sink -c``'s counters and diagnostics.

    smtp-sink prints ``sess=N quit=N mesg=N\\r`` whenever a session ends, a
    QUIT is answered or a message's final dot arrives; ``mesg`` is the
    messages received.
    """

    def __init__(self, window: float = 5.0) -> None:
        """Rates over ``window`` seconds."""
        super().__init__()
        self.sessions = 0
        self.quits = 0
        self.messages = 0
        self._stdout = LineSplitter()
        self._rates = RateWindow(window)

    def feed_stdout(self, data: bytes) -> None:
        """Take the latest counters from ``data``."""
        for line in reversed(self._stdout.feed(data)):
            match = _SINK_COUNTERS.search(line)
            if match:
                self.sessions, self.quits, self.messages = (int(g) for g in match.groups())
                break

    def sample(self, elapsed: float) -> Sample:
        """The counters now, ``elapsed`` seconds into the job."""
        return Sample(
            role="sink",
            elapsed=elapsed,
            count=self.messages,
            rate=self._rates.add(elapsed, self.messages),
        )

    def finish(self, samples: Sequence[Sample]) -> Summary:
        """The sink's summary over the period its count was moving (see :func:`active_summary`).

        Args:
            samples: the sink samples the job took with :meth:`sample`, the
                last one after the generator finished.
        """
        self._flush_stderr()
        if self.fatal:
            return active_summary(
                "sink", samples, failures={f"fatal: {self.fatal}": 1}, ok=False, reason=f"smtp-sink: {self.fatal}"
            )
        return active_summary("sink", samples, failures=dict(self.failures))


class PostfixSinkJob(Job):
    """Postfix's smtp-sink with its ``-c`` counters; ready when it accepts TCP."""

    role: Role = "sink"
    backend = "postfix"

    def __init__(self, launcher: Launcher, argv: list[str], env: dict[str, str], address: tuple[str, int]) -> None:
        super().__init__(launcher, argv, env=env, name="smtp-sink")
        self.address = address
        self.port = address[1]
        self._parser = SmtpSinkOutput()

    def on_stdout(self, data: bytes) -> None:
        self._parser.feed_stdout(data)

    def on_stderr(self, data: bytes) -> None:
        self._parser.feed_stderr(data)
        if self._parser.fatal:
            self.fail(self._parser.fatal)

    def poll_ready(self) -> None:
        if self._error is None and self.process.running and tcp_accepts(*self.address, timeout=0.2):
            self.mark_ready()

    def reading(self) -> Sample | None:
        with self._lock:
            return self._parser.sample(self.elapsed())

    def summary(self, series: list[Sample]) -> Summary | None:
        with self._lock:
            return self._parser.finish(series) if series else None


class PostfixSourceJob(ParsedGeneratorJob):
    """Postfix's smtp-source with its ``-c`` counter."""

    backend = "postfix"
    _parser: SmtpSourceOutput

    def __init__(
        self, launcher: Launcher, argv: list[str], env: dict[str, str], *, messages: int, body_size: int
    ) -> None:
        super().__init__(launcher, argv, env=env, name="smtp-source")
        self._parser = SmtpSourceOutput(expected_messages=messages, body_size=body_size)

    def on_stdout(self, data: bytes) -> None:
        self._parser.feed_stdout(data)

    def failures_so_far(self) -> dict[str, int]:
        with self._lock:
            return dict(self._parser.failures)

    def reading(self) -> Sample | None:
        with self._lock:
            return self._parser.sample(self.elapsed())

    def summary(self, series: list[Sample]) -> Summary | None:
        with self._lock:
            elapsed = series[-1].elapsed if series else self.elapsed()
            return self._parser.finish(elapsed)


class PostfixBackend:
    """Postfix's smtp-sink and smtp-source (``$KUMOTUI_POSTFIX_DIR``, then the usual sbin directories)."""

    name = Backend.POSTFIX

    def missing(self) -> str | None:
        """Why the Postfix tools cannot be used here, or None when both are found."""
        try:
            find_postfix_tools()
        except KumotuiError as error:
            return str(error)
        return None

    def sink(self, launcher: Launcher, request: SinkRequest) -> Job:
        """smtp-sink on ``request``'s address (port 2026 unless asked), able to hold its concurrency."""
        tools = find_postfix_tools()
        port = request.port or SINK_PORT
        listen = f"[{request.host}]:{port}" if ":" in request.host else f"{request.host}:{port}"
        argv = smtp_sink_command(tools, listen, concurrency=request.concurrency)
        reach = request.host if request.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return PostfixSinkJob(launcher, argv, tools.environ(), (reach, port))

    def generator(self, launcher: Launcher, request: LoadRequest) -> Job:
        """smtp-source, which sends a fixed count: ``messages`` is required."""
        if request.messages is None:
            raise KumotuiError("--backend postfix needs --messages (smtp-source sends a fixed count)")
        tools = find_postfix_tools()
        argv = smtp_source_command(
            tools,
            request.target,
            concurrency=request.concurrency,
            messages=request.messages,
            body_size=request.body_size,
        )
        return PostfixSourceJob(launcher, argv, tools.environ(), messages=request.messages, body_size=request.body_size)


BACKEND = PostfixBackend()
