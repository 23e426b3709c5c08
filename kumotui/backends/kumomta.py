"""The KumoMTA backend: kumod with a sink policy kumotui writes, and traffic-gen.

Everything here follows the facts in ``KUMOMTA.md`` (release line 2026.06):
where the binaries live, the sink policy, kumod's readiness lines and HTTP
endpoints, traffic-gen's flags and its exact output. KumoMTA cannot be
installed on kumotui's build machines, so tests drive stand-in executables
that reproduce those formats; keeping this module literal to the facts is
what keeps it honest against the real tools.

Nothing here starts a process: the job model runs the command lines built
here and feeds what it reads to the parsers.
"""

from __future__ import annotations

import contextlib
import math
import os
import pwd
import re
import stat
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kumotui.backends import LineSplitter, format_count, parse_size, strip_ansi
from kumotui.errors import KumotuiError
from kumotui.samples import RateWindow, Sample, Summary

DEFAULT_PREFIX = Path("/opt/kumomta")
SINK_PORT = 2026
"""The port KumoMTA's sink policy listens on (its docs' ``--target <sink>:25`` example is wrong)."""
SINK_HTTP_PORT = 8002
DEFAULT_KUMOD_USER = "kumod"
"""The account kumod drops to when started as root (``--user``)."""
POLICY_NAME = "sink.lua"
MIN_RATE_FOR_DURATION = 10
"""Messages per second assumed when sizing ``--duration`` for a message count:
slower than any published result (Postfix on 8 CPUs: about 40/s)."""
MIN_DURATION = 3600


# --- discovery -------------------------------------------------------------


@dataclass(frozen=True)
class KumoTools:
    """Where kumod and traffic-gen are."""

    sbin: Path

    @property
    def kumod(self) -> Path:
        """The MTA daemon (also the sink, with kumotui's policy)."""
        return self.sbin / "kumod"

    @property
    def traffic_gen(self) -> Path:
        """KumoMTA's SMTP load generator."""
        return self.sbin / "traffic-gen"


def find_kumomta(
    env: Mapping[str, str] | None = None,
    need: tuple[str, ...] = ("kumod", "traffic-gen"),
) -> KumoTools:
    """Find KumoMTA's binaries in ``$KUMOMTA_PREFIX/sbin`` or ``/opt/kumomta/sbin``.

    Args:
        env: the environment to read ``KUMOMTA_PREFIX`` from (default: this process's).
        need: the binaries the caller will run; a sink needs only ``kumod``.

    Raises:
        KumotuiError: a needed binary is missing or not executable, saying
            what was looked for and where.
    """
    environ = os.environ if env is None else env
    override = environ.get("KUMOMTA_PREFIX")
    prefix = Path(override) if override else DEFAULT_PREFIX
    tools = KumoTools(prefix / "sbin")
    missing = [name for name in need if not os.access(tools.sbin / name, os.X_OK)]
    if missing:
        where = f"{tools.sbin} (from $KUMOMTA_PREFIX={override})" if override else f"{tools.sbin}"
        raise KumotuiError(
            f"KumoMTA not found: no executable {' or '.join(missing)} in {where}. "
            "Install the kumomta package, set KUMOMTA_PREFIX to its install prefix, "
            "or choose another backend (--backend builtin)."
        )
    return tools


# --- the sink policy --------------------------------------------------------

_POLICY = """\
-- kumod sink policy written by kumotui; rewritten on every run, do not edit.
-- Accepts mail from any client and throws it away: every message is put in
-- the 'null' queue, so nothing is spooled or delivered and clients still get
-- 250. Writes no log files. Spools live in a throwaway directory.
local kumo = require 'kumo'

kumo.on('init', function()
  -- Keep the accounting database with the throwaway spools, not in /var.
  kumo.configure_accounting_db_path({accounting})

  kumo.start_esmtp_listener {{
    listen = {smtp_listen},
    relay_hosts = {{ '0.0.0.0/0' }},
  }}

  kumo.start_http_listener {{
    listen = {http_listen},
    trusted_hosts = {{ '127.0.0.1', '::1' }},
  }}

  -- kumod requires the default spools even though the null queue never uses them.
  kumo.define_spool {{
    name = 'data',
    path = {data_spool},
  }}
  kumo.define_spool {{
    name = 'meta',
    path = {meta_spool},
  }}
  -- No kumo.configure_local_logs: a sink keeps no logs.
end)

kumo.on('smtp_server_message_received', function(msg)
  msg:set_meta('queue', 'null')
end)

kumo.on('http_message_generated', function(msg)
  msg:set_meta('queue', 'null')
end)
"""


def lua_string(text: str) -> str:
    """A single-quoted Lua string literal for any text (paths may hold quotes)."""
    out = []
    for char in text:
        if char in "\\'":
            out.append("\\" + char)
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\{ord(char):03d}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def _listen(host: str, port: int) -> str:
    """``host:port`` with an IPv6 host bracketed, as kumod's ``listen`` expects."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def render_sink_policy(
    spool_dir: Path,
    *,
    port: int = SINK_PORT,
    http_port: int = SINK_HTTP_PORT,
    listen_host: str = "0.0.0.0",
    http_host: str = "0.0.0.0",
) -> str:
    """The sink policy's Lua text (for writing locally or over SSH).

    Args:
        spool_dir: a throwaway directory for kumod's spools and accounting database.
        port: the ESMTP port (KumoMTA's sink uses 2026).
        http_port: the HTTP port for liveness and ``/metrics`` (KumoMTA's sink uses 8002).
        listen_host: the address the ESMTP listener binds (all IPv4 addresses by default).
        http_host: the address the HTTP listener binds; only loopback is trusted
            for ``/metrics``, while liveness needs no trust.
    """
    return _POLICY.format(
        accounting=lua_string(str(spool_dir / "accounting.db")),
        smtp_listen=lua_string(_listen(listen_host, port)),
        http_listen=lua_string(_listen(http_host, http_port)),
        data_spool=lua_string(str(spool_dir / "data")),
        meta_spool=lua_string(str(spool_dir / "meta")),
    )


def write_sink_policy(
    directory: Path,
    *,
    port: int = SINK_PORT,
    http_port: int = SINK_HTTP_PORT,
    listen_host: str = "0.0.0.0",
    http_host: str = "0.0.0.0",
    owner: str | None = None,
) -> Path:
    """Write ``sink.lua`` and its spool directory under ``directory``; returns the policy path.

    Args:
        directory: a temporary directory the caller owns and removes afterwards.
        port: see :func:`render_sink_policy`.
        http_port: see :func:`render_sink_policy`.
        listen_host: see :func:`render_sink_policy`.
        http_host: see :func:`render_sink_policy`.
        owner: the account kumod will drop to (``--user``) when started as
            root; the directory is handed to it so kumod can still read the
            policy and write its spools after dropping privileges.

    Raises:
        KumotuiError: the owner does not exist or the files cannot be written.
    """
    spool = directory / "spool"
    try:
        for path in (directory, spool, spool / "data", spool / "meta"):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        policy = directory / POLICY_NAME
        policy.write_text(
            render_sink_policy(spool, port=port, http_port=http_port, listen_host=listen_host, http_host=http_host),
            encoding="utf-8",
        )
        if owner is not None:
            _give_to(owner, [directory, spool, spool / "data", spool / "meta", policy])
    except OSError as error:
        raise KumotuiError(f"cannot write the kumod sink policy in {directory}: {error.strerror}") from None
    return policy


def _give_to(owner: str, paths: list[Path]) -> None:
    """chown paths to a user (and its primary group), after checking the user can reach them."""
    try:
        account = pwd.getpwnam(owner)
    except KeyError:
        raise KumotuiError(f"user '{owner}' does not exist; create it or choose another kumod --user") from None
    blocked = _unsearchable_parent(paths[0], account.pw_uid, account.pw_gid)
    if blocked is not None:
        raise KumotuiError(
            f"kumod will run as '{owner}', who cannot reach {paths[0]}: {blocked} is not searchable by it "
            "(use a directory under /tmp, e.g. from tempfile.mkdtemp())"
        )
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


def _unsearchable_parent(directory: Path, uid: int, gid: int) -> Path | None:
    """The first ancestor that user cannot enter, judged by owner, group and other bits."""
    for parent in directory.resolve().parents:
        info = parent.stat()
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return parent
    return None


def routing_snippet(sink_host: str, sink_port: int = SINK_PORT) -> str:
    """``init.lua`` text that routes an MTA under test to a kumotui sink.

    Every received message is queued for the sink (``set_meta('queue', ...)``,
    as KumoMTA's performance docs do), and the egress path to it uses the
    sink's port and lifts ``prohibited_hosts``, without which kumod refuses
    to deliver to loopback and private addresses (``550 5.4.4``).
    """
    domain = _routing_domain(sink_host)
    quoted = lua_string(domain)
    return f"""\
-- Route every message this MTA receives to the kumotui sink at {_listen(sink_host, sink_port)}.
-- For benchmarks only: no message reaches its real recipient.
kumo.on('smtp_server_message_received', function(msg)
  msg:set_meta('queue', {quoted})
end)

-- kumod refuses loopback and private destinations by default (prohibited_hosts,
-- "550 5.4.4"); allow them, and use the sink's port, on the path to the sink only.
-- get_egress_path_config may be defined only once: if your policy already has one
-- (or uses the shaping helper), add this branch to it instead.
kumo.on('get_egress_path_config', function(routing_domain, egress_source, site_name)
  if routing_domain == {quoted} then
    return kumo.make_egress_path {{
      smtp_port = {sink_port},
      prohibited_hosts = {{}},
    }}
  end
  return kumo.make_egress_path {{}}
end)
"""


def _routing_domain(host: str) -> str:
    """An IP literal must be bracketed to be routed to (``[10.0.0.5]``, ``[IPv6:::1]``)."""
    if ":" in host:
        return f"[IPv6:{host.strip('[]')}]"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", host):
        return f"[{host}]"
    return host


# --- kumod ------------------------------------------------------------------


def kumod_command(
    kumod: Path | str,
    policy: Path | str,
    *,
    as_root: bool | None = None,
    user: str = DEFAULT_KUMOD_USER,
) -> list[str]:
    """kumod's argument list for a sink.

    Args:
        kumod: the binary (``KumoTools.kumod``).
        policy: the file from :func:`write_sink_policy`.
        as_root: whether it will run as root (default: whether this process
            is root); kumod refuses to start as root without ``--user``.
        user: the account to drop to when root.
    """
    root = os.geteuid() == 0 if as_root is None else as_root
    command = [str(kumod), "--policy", str(policy)]
    if root:
        command += ["--user", user]
    return command


KumodEventKind = Literal["smtp_listener", "http_listener", "initialized", "failed", "shutdown"]


@dataclass(frozen=True)
class KumodEvent:
    """Something kumod's stderr said about its start or stop."""

    kind: KumodEventKind
    detail: str
    """The listener's address, the failure's text, or the whole line."""


_KUMOD_LINES: tuple[tuple[KumodEventKind, re.Pattern[str]], ...] = (
    ("failed", re.compile(r"problem initializing:\s*(.*?)\s*$")),
    ("smtp_listener", re.compile(r"smtp listener on (\S+)\s*$")),
    ("http_listener", re.compile(r"http listener on (\S+)\s*$")),
    ("initialized", re.compile(r"(initialization complete)\s*$")),
    ("shutdown", re.compile(r"(Shutdown completed OK!)")),
)


class KumodStderr:
    """Reads kumod's stderr for its readiness and failure lines.

    ``initialization complete`` can appear even after a failed start, so
    it is recorded but never trusted alone: readiness is the liveness
    endpoint (:func:`check_liveness`); a ``problem initializing:`` line, in
    any order, means the start failed.
    """

    def __init__(self) -> None:
        """Start with nothing seen."""
        self._lines = LineSplitter()
        self.smtp_listeners: list[str] = []
        self.http_listeners: list[str] = []
        self.initialized = False
        self.failure: str | None = None
        self.shutdown_ok = False

    def feed(self, data: bytes) -> list[KumodEvent]:
        """Events in the lines completed by ``data``."""
        return [event for line in self._lines.feed(data) if (event := self._line(line))]

    def finish(self) -> list[KumodEvent]:
        """Events in a last unterminated line, once the stream has closed."""
        return [event for line in self._lines.flush() if (event := self._line(line))]

    def _line(self, raw: str) -> KumodEvent | None:
        line = strip_ansi(raw)
        for kind, pattern in _KUMOD_LINES:
            match = pattern.search(line)
            if match:
                self._record(kind, match.group(1))
                return KumodEvent(kind, match.group(1))
        return None

    def _record(self, kind: KumodEventKind, detail: str) -> None:
        if kind == "failed":
            self.failure = self.failure or detail or "kumod did not say why"
        elif kind == "smtp_listener":
            self.smtp_listeners.append(detail)
        elif kind == "http_listener":
            self.http_listeners.append(detail)
        elif kind == "initialized":
            self.initialized = True
        else:
            self.shutdown_ok = True


@dataclass(frozen=True)
class Liveness:
    """What kumod's liveness endpoint answered."""

    ready: bool
    status: int | None
    """The HTTP status; None when nothing answered."""
    detail: str
    """The body (kumod's reason for a 503) or why the request failed."""


def _url(host: str, port: int, path: str) -> str:
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{bracketed}:{port}{path}"


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""No proxies: a sink on loopback or a lab network must never be reached through one."""


def _get(url: str, timeout: float) -> tuple[int, str]:
    """Status and body of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        body = error.read().decode("utf-8", "replace") if error.fp else ""
        return error.code, body


def check_liveness(host: str = "127.0.0.1", port: int = SINK_HTTP_PORT, timeout: float = 2.0) -> Liveness:
    """Ask ``/api/check-liveness/v1``: 200 means ready, 503 means starting or shedding load."""
    url = _url(host, port, "/api/check-liveness/v1")
    try:
        status, body = _get(url, timeout)
    except urllib.error.URLError as error:
        return Liveness(False, None, f"{url}: {getattr(error.reason, 'strerror', None) or error.reason}")
    except (OSError, ValueError) as error:
        return Liveness(False, None, f"{url}: {error}")
    return Liveness(status == 200, status, body.strip())


def fetch_metrics(host: str = "127.0.0.1", port: int = SINK_HTTP_PORT, timeout: float = 2.0) -> str:
    """kumod's Prometheus text from ``/metrics`` (loopback is trusted without auth).

    Raises:
        KumotuiError: no answer, or a status other than 200.
    """
    url = _url(host, port, "/metrics")
    try:
        status, body = _get(url, timeout)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise KumotuiError(f"cannot read kumod metrics at {url}: {reason}") from None
    if status != 200:
        raise KumotuiError(f"kumod metrics at {url} answered HTTP {status}: {body.strip()[:200]}")
    return body


@dataclass(frozen=True)
class MetricSample:
    """One series' value from Prometheus text."""

    name: str
    labels: Mapping[str, str]
    value: float


_METRIC_LINE = re.compile(
    r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*"
    r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|NaN))(?:\s+-?\d+)?\s*$"
)
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_LABEL_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_prometheus(text: str) -> list[MetricSample]:
    """Every series in Prometheus text exposition format.

    Comments and ``# HELP``/``# TYPE`` lines are skipped, labels may come in
    any order with escaped quotes, values may be ``1.5e+06``, ``+Inf`` or
    ``NaN``, and a trailing timestamp is ignored. Lines that do not parse
    are skipped: one odd metric must not hide the counters we need.
    """
    found = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _METRIC_LINE.match(line)
        if not match:
            continue
        labels = _parse_labels(match.group(2) or "")
        if labels is None:
            continue
        found.append(MetricSample(match.group(1), labels, float(match.group(3))))
    return found


def _parse_labels(text: str) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text.rstrip()):
        match = _LABEL.match(text, position)
        if not match:
            return None
        labels[match.group(1)] = re.sub(r"\\[\\\"n]", lambda m: _LABEL_ESCAPES[m.group(0)], match.group(2))
        position = match.end()
    return labels


@dataclass(frozen=True)
class SinkCounters:
    """The two series a kumod sink is watched by (None: not in the text)."""

    received: int | None
    """``total_messages_received{service="esmtp_listener"}``: +1 per DATA transaction."""
    connections: int | None
    """``connection_count{service="esmtp_listener"}``: open inbound sessions."""


def sink_counters(text: str) -> SinkCounters:
    """The sink's counters from ``/metrics`` text, summed over any extra labels."""
    totals: dict[str, float] = {}
    for sample in parse_prometheus(text):
        if sample.labels.get("service") != "esmtp_listener" or math.isnan(sample.value):
            continue
        if sample.name in ("total_messages_received", "connection_count"):
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    received = totals.get("total_messages_received")
    connections = totals.get("connection_count")
    return SinkCounters(
        received=int(received) if received is not None else None,
        connections=int(connections) if connections is not None else None,
    )


class KumodSinkSampler:
    """Turns successive ``/metrics`` readings into sink samples.

    Poll about once a second (what ``kcli top`` does); the rate is the
    counter's change over a sliding window.
    """

    def __init__(self, window: float = 5.0) -> None:
        """Rates over ``window`` seconds."""
        self._rates = RateWindow(window)
        self._last = 0

    def update(self, elapsed: float, metrics_text: str) -> Sample:
        """A sample from one reading taken ``elapsed`` seconds into the job."""
        counters = sink_counters(metrics_text)
        count = counters.received if counters.received is not None else self._last
        self._last = count
        return Sample(
            role="sink",
            elapsed=elapsed,
            count=count,
            connections=counters.connections,
            rate=self._rates.add(elapsed, count),
        )


# --- traffic-gen -------------------------------------------------------------


def generous_duration(messages: int) -> int:
    """A ``--duration`` that lets the message count, not the clock, end the run.

    traffic-gen applies ``--duration`` (default 60 s) even with
    ``--message-count``; this cap allows for :data:`MIN_RATE_FOR_DURATION`.
    """
    return max(MIN_DURATION, math.ceil(messages / MIN_RATE_FOR_DURATION))


def traffic_gen_command(
    traffic_gen: Path | str,
    *,
    target: str,
    concurrency: int | None = None,
    messages: int | None = None,
    duration: int | None = None,
    body_size: str | int | None = None,
    keep_going: bool = False,
) -> list[str]:
    """traffic-gen's argument list.

    Args:
        traffic_gen: the binary (``KumoTools.traffic_gen``).
        target: ``HOST:PORT`` of the sink or MTA under test.
        concurrency: client tasks (traffic-gen's default: CPUs x 10).
        messages: stop after this many (``--message-count``).
        duration: seconds; with ``messages`` and no duration, a generous one
            from :func:`generous_duration` so the count is not cut short.
        body_size: bytes or a size such as ``100KB`` (default 1024).
        keep_going: retry after errors instead of ending the client task,
            for a sink that pushes back.

    Raises:
        KumotuiError: a number is not positive or the size does not parse.
    """
    for flag, value in (("--concurrency", concurrency), ("--message-count", messages), ("--duration", duration)):
        if value is not None and value < 1:
            raise KumotuiError(f"traffic-gen {flag} must be at least 1, not {value}")
    command = [str(traffic_gen), "--target", target]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    if messages is not None:
        command += ["--message-count", str(messages)]
        if duration is None:
            duration = generous_duration(messages)
    if duration is not None:
        command += ["--duration", str(duration)]
    if body_size is not None:
        parse_size(body_size)  # refused here, in the engine's words, rather than by traffic-gen later
        command += ["--body-size", str(body_size)]
    if keep_going:
        command.append("--keep-going")
    return command


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|µs|μs|us|ms|s)\s*$")
_DURATION_UNITS = {"ns": 1e-9, "µs": 1e-6, "μs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_rust_duration(text: str) -> float:
    """Seconds from Rust's ``Debug`` format of a ``Duration``.

    Rust picks the largest unit that keeps the whole part non-zero, with no
    trailing zeros and never minutes: ``81.234567891s``, ``1.5ms``,
    ``523µs`` (U+00B5; U+03BC and ``us`` are accepted too), ``100ns``,
    ``0ns``.

    Raises:
        ValueError: the text is not such a duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a Rust Duration (examples: 2.003s, 1.5ms, 523µs, 100ns)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_PROGRESS = re.compile(
    rf"current rate: ({_NUMBER}) msgs/s, ({_NUMBER}) msgs/minute, ({_NUMBER}) msgs/hour "
    rf"\(sent=({_NUMBER}), clients=({_NUMBER})\)"
)
_FINAL = re.compile(rf"sent ({_NUMBER}) messages, failed ({_NUMBER}) over (\S+?)\.?\s*$")
_LATENCY = re.compile(r"transaction latency:\s*(.*)$")
_LATENCY_ITEM = re.compile(r"([A-Za-z][\w.]*)=(\S+)")
_OVERALL = re.compile(rf"overall rate: ({_NUMBER}) msgs/s")
_BODY = re.compile(r"Generated body of size (.+?)\s*$")
_END_MARKERS = ("Deadline reached, stopping", "All clients finished")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass
class TrafficGenResult:
    """What traffic-gen's final lines said (None: not seen)."""

    ended_by: str | None = None
    """``Deadline reached, stopping`` or ``All clients finished``."""
    sent: int | None = None
    failed: int | None = None
    elapsed: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    """Every figure of the latency line (``avg``, ``min``, ``p99.9``, ...), in ms."""
    overall_rate: float | None = None


class TrafficGenOutput:
    """Incremental parser of traffic-gen's stdout and stderr.

    stdout redraws a progress line about once a second, starting with
    ``\\r\\x1b[K`` and without a newline, so lines are split on ``\\r`` as
    well as ``\\n``. A progress line is complete when it ends with ``)``,
    so it is reported as soon as it arrives rather than a second later when
    the next redraw terminates it. Feed bytes as they are read; chunk
    boundaries never change the result.
    """

    def __init__(self, *, expected_messages: int | None = None, body_size: int | None = None) -> None:
        """Args: the ``--message-count`` and body bytes asked for, to judge the run and estimate MB/s."""
        self.expected_messages = expected_messages
        self.body_size = body_size
        self.result = TrafficGenResult()
        self.failures: Counter[str] = Counter()
        """Client tasks that died, by stderr line."""
        self.last: Sample | None = None
        self._stdout = LineSplitter()
        self._stderr = LineSplitter()
        self._reported_partial = ""

    def feed_stdout(self, data: bytes, elapsed: float) -> list[Sample]:
        """Progress samples completed by ``data``, read ``elapsed`` seconds into the job."""
        samples = [s for line in self._stdout.feed(data) if (s := self._complete_line(line, elapsed))]
        partial = strip_ansi(self._stdout.peek())
        if partial != self._reported_partial and _PROGRESS.search(partial) and partial.rstrip().endswith(")"):
            self._reported_partial = partial
            sample = self._progress(partial, elapsed)
            if sample:
                samples.append(sample)
        return samples

    def feed_stderr(self, data: bytes) -> None:
        """Record the body size line and one failure per dead client task."""
        for line in self._stderr.feed(data):
            self._stderr_line(line)

    def finish(self, elapsed: float | None = None) -> Summary:
        """The run's summary once both streams have closed.

        Args:
            elapsed: the job's own clock, used only when traffic-gen was
                stopped before printing its elapsed time.
        """
        for line in self._stdout.flush():
            self._complete_line(line, elapsed if elapsed is not None else 0.0)
        for line in self._stderr.flush():
            self._stderr_line(line)
        return self._summary(elapsed)

    def _complete_line(self, raw: str, elapsed: float) -> Sample | None:
        line = strip_ansi(raw)
        if not line.strip():
            return None
        already = self._reported_partial
        self._reported_partial = ""
        if already and line.startswith(already):
            self._final_lines(line[len(already) :])
            return None
        sample = self._progress(line, elapsed)
        self._final_lines(line)
        return sample

    def _progress(self, line: str, elapsed: float) -> Sample | None:
        match = _PROGRESS.search(line)
        if not match:
            return None
        self.last = Sample(
            role="generator",
            elapsed=elapsed,
            count=int(_number(match.group(4))),
            failed=sum(self.failures.values()),
            connections=int(_number(match.group(5))),
            rate=_number(match.group(1)),
            bytes=int(_number(match.group(4))) * self.body_size if self.body_size is not None else None,
        )
        return self.last

    def _final_lines(self, line: str) -> None:
        """The end markers may share a line with the last progress redraw."""
        result = self.result
        for marker in _END_MARKERS:
            if marker in line:
                result.ended_by = marker
        if match := _FINAL.search(line):
            result.sent = int(_number(match.group(1)))
            result.failed = int(_number(match.group(2)))
            try:
                result.elapsed = parse_rust_duration(match.group(3))
            except ValueError:
                result.elapsed = None
        elif match := _LATENCY.search(line):
            for key, value in _LATENCY_ITEM.findall(match.group(1)):
                try:
                    result.latency_ms[key] = parse_rust_duration(value) * 1000
                except ValueError:
                    continue
        elif match := _OVERALL.search(line):
            result.overall_rate = _number(match.group(1))

    def _stderr_line(self, raw: str) -> None:
        line = strip_ansi(raw).strip()
        if not line:
            return
        if match := _BODY.search(line):
            if self.body_size is None:
                with contextlib.suppress(KumotuiError):
                    self.body_size = parse_size(match.group(1))
            return
        self.failures[line] += 1

    def _summary(self, elapsed: float | None) -> Summary:
        result, last = self.result, self.last
        finished = result.sent is not None
        count = result.sent if result.sent is not None else (last.count if last else 0)
        failed = result.failed if result.failed is not None else 0
        if result.elapsed is not None:
            took = result.elapsed
        else:
            took = elapsed if elapsed is not None else (last.elapsed if last else 0.0)
        ok, reason = self._verdict(finished, count, failed)
        return Summary.build(
            "generator",
            count=count,
            failed=failed,
            elapsed=took,
            msgs_per_s=result.overall_rate,
            bytes=count * self.body_size if self.body_size is not None else None,
            latency_ms=result.latency_ms,
            failures=dict(self.failures),
            ok=ok,
            reason=reason,
        )

    def _verdict(self, finished: bool, count: int, failed: int) -> tuple[bool, str]:
        """Judged from the output: traffic-gen exits 0 even when every send failed."""
        worst = self.failures.most_common(1)
        because = f" (e.g. {worst[0][0]})" if worst else ""
        if not finished:
            return False, "traffic-gen stopped before printing its summary (stopped early, or it crashed)"
        if count == 0:
            return False, f"no message was sent{because}"
        if failed:
            return False, f"{failed:,} of {count + failed:,} transactions failed{because}"
        if self.failures:
            dead = sum(self.failures.values())
            return False, f"{dead:,} client task(s) stopped on an error{because}"
        expected = self.expected_messages
        if expected is not None and count < expected and self.result.ended_by == _END_MARKERS[0]:
            return False, f"--duration ended the run after {format_count(count)} of {format_count(expected)} messages"
        return True, ""
