"""The built-in backend: kumotui's own SMTP sink and generator (:mod:`kumotui.engines`).

The engines print JSON lines (ready, progress, summary, error; their shapes
are the TypedDicts below); the jobs here start them and turn those lines into
samples and summaries. Always available: the engines need only Python.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TypedDict

from kumotui.backends import Backend, LoadRequest, SinkRequest
from kumotui.backends.job import Job
from kumotui.backends.lines import LineSplitter
from kumotui.backends.process import Launcher
from kumotui.backends.samples import LatencyHistogram, RateWindow, Role, Sample, Summary, active_summary

# --- the engines' JSON lines ----------------------------------------------------------


class ReadyLine(TypedDict, total=False):
    """``{"type": "ready", ...}``: the engine is listening (sink) or connecting (generator)."""

    type: Literal["ready"]
    port: int
    """The sink's port (useful with ``--listen HOST:0``)."""
    listen: str
    workers: int
    loop: str
    pid: int


class ProgressLine(TypedDict, total=False):
    """``{"type": "progress" | "summary", ...}``: cumulative counters since the engine started."""

    type: Literal["progress", "summary"]
    elapsed: float
    sent: int
    """Generator: messages accepted by the server."""
    received: int
    """Sink: messages accepted."""
    failed: int
    """Generator: messages the server refused or that a dropped session cut short."""
    rejected_mail: int
    """Sink: messages refused at MAIL."""
    rejected_rcpt: int
    """Sink: recipients refused at RCPT."""
    rejected_data: int
    """Sink: messages refused at DATA or at the end of data."""
    aborted: int
    """Sink: transactions the client cut short."""
    timeouts: int
    """Sink: sessions closed for making no progress."""
    refusals: dict[str, int]
    """Sink: refusals by stage and code (``"data 451"``)."""
    failed_by: dict[str, int]
    connect_errors: dict[str, int]
    unsent: int
    unfinished: int
    connections: int
    bytes: int
    msgs_per_s: float
    latency_ms: dict[str, float]


class EngineJob(Job):
    """A built-in engine: JSON lines on stdout (ready, progress, summary, error)."""

    module = ""
    """The engine's module in :mod:`kumotui.engines`."""
    count_field: Literal["sent", "received"] = "sent"
    """The engine's cumulative counter: ``received`` (sink) or ``sent`` (generator)."""

    def __init__(self, launcher: Launcher, args: list[str]) -> None:
        super().__init__(
            launcher,
            [*launcher.engine(self.module), *args, "--exit-on-stdin-eof"],
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            name=self.module,
        )
        self._splitter = LineSplitter()
        self.ready_info: ReadyLine = {}
        self.last: ProgressLine | None = None
        self.final: ProgressLine | None = None
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
                self.port = int(message.get("port", 0))
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

    def reading(self) -> Sample | None:
        """The engine's latest line as a sample; a zero sample once ready, before the first line."""
        with self._lock:
            last: ProgressLine | None = self.last if self.last is not None else ({} if self.ready_info else None)
        if last is None:
            return None
        elapsed = self.elapsed()
        count = int(last.get(self.count_field, 0))
        return Sample(
            role=self.role,
            elapsed=elapsed,
            count=count,
            failed=self.failed_in(last),
            connections=last.get("connections"),
            rate=self._rates.add(elapsed, count),
            latency_ms=last.get("latency_ms"),
            bytes=last.get("bytes"),
            clock=last.get("elapsed"),
        )

    def failed_in(self, line: ProgressLine) -> int:
        """Messages that failed, by the engine's own count in ``line``."""
        return int(line.get("failed", 0))


SINK_FAILURES: tuple[str, ...] = ("rejected_mail", "rejected_rcpt", "rejected_data", "aborted", "timeouts")
"""The sink's refusal counters, each in its own unit, as a run's summary lists them."""


class BuiltinSinkJob(EngineJob):
    """kumotui's SMTP sink."""

    role: Role = "sink"
    backend = Backend.BUILTIN
    module = "smtp_sink"
    count_field = "received"

    def failed_in(self, line: ProgressLine) -> int:
        """Messages the sink refused (at MAIL, DATA or end of data); refused recipients are not messages."""
        return int(line.get("rejected_mail", 0)) + int(line.get("rejected_data", 0))

    def stamps_so_far(self) -> tuple[int, list[list[int]]]:
        """Stamped messages accepted so far and the set of their ids (``--stamps``), from the latest line."""
        with self._lock:
            last: dict[str, Any] = dict(self.last or {})
        return int(last.get("stamped", 0)), list(last.get("ranges_delivered") or [])

    def pushback_so_far(self) -> dict[str, Any]:
        """A Smart Sink's answers to stamped messages: counts from the latest line, the id sets from the final one.

        ``bounced_stamped`` and ``deferrals_stamped`` (counts), ``ranges_deferred``
        and ``ranges_bounced`` (ids; final line only), ``domains`` and
        ``domain_replies`` (per domain); missing keys when the sink has no responses file.
        """
        keys = (
            "bounced_stamped",
            "deferrals_stamped",
            "ranges_deferred",
            "ranges_bounced",
            "domains",
            "domain_replies",
        )
        with self._lock:
            last: dict[str, Any] = dict(self.final or self.last or {})
        return {key: last[key] for key in keys if key in last}

    def delivery_latency(self) -> dict[str, float]:
        """Delivery latency percentiles (ms) of the stamped messages so far."""
        with self._lock:
            last: dict[str, Any] = dict(self.final or self.last or {})
        return dict(last.get("delivery_ms") or {})

    def failures_so_far(self) -> dict[str, int]:
        """The refusal counters of the latest line, each in its own unit (for the live sink pane)."""
        with self._lock:
            last: dict[str, Any] = dict(self.last or {})
        return {key: int(last.get(key, 0)) for key in SINK_FAILURES}

    def summary(self, series: list[Sample]) -> Summary | None:
        if not series:
            return None
        final: dict[str, Any] = dict(self.final or {})
        failures = {key: int(final[key]) for key in SINK_FAILURES if final.get(key)}
        return active_summary("sink", series, failures=failures)


class BuiltinGenJob(EngineJob):
    """kumotui's SMTP generator."""

    role: Role = "generator"
    backend = Backend.BUILTIN
    module = "smtp_gen"
    count_field = "sent"

    def __init__(self, launcher: Launcher, args: list[str], duration: float | None = None) -> None:
        """A generator run with ``args``; ``duration`` is its ``--duration`` (its deadline), if any."""
        super().__init__(launcher, args)
        self.duration = duration

    def failures_so_far(self) -> dict[str, int]:
        with self._lock:
            last = self.last or {}
            return {**last.get("failed_by", {}), **last.get("connect_errors", {})}

    def histogram(self) -> LatencyHistogram | None:
        """The latency histogram of the latest line (None before the first): generators on several hosts merge these."""
        with self._lock:
            line: dict[str, Any] = dict(self.last or {})
        return LatencyHistogram.from_line(line)

    def unsent(self) -> int | None:
        """Messages of the budget never sent or left in flight, from the final line (None before it)."""
        with self._lock:
            final: dict[str, Any] | None = dict(self.final) if self.final is not None else None
        if final is None:
            return None
        return int(final.get("unsent", 0)) + int(final.get("unfinished", 0))

    def accepted_ids(self) -> list[list[int]]:
        """The stamp ids the server accepted (``--stamp``), from the final line (empty before it)."""
        with self._lock:
            final: dict[str, Any] = dict(self.final or {})
        return list(final.get("ranges_accepted") or [])

    def summary(self, series: list[Sample]) -> Summary | None:
        final = self.final
        if final is None:
            return None
        failures = {**final.get("failed_by", {}), **final.get("connect_errors", {})}
        failed = int(final.get("failed", 0))
        unsent = int(final.get("unsent", 0)) + int(final.get("unfinished", 0))
        elapsed = float(final.get("elapsed", 0.0))
        # A run bounded by --duration ends with messages in flight or not started: that is
        # the deadline doing its job, not a failure (they are still counted, and said).
        by_deadline = self.duration is not None and elapsed >= self.duration and not self._error
        ok = failed == 0 and (unsent == 0 or by_deadline) and int(final.get("sent", 0)) > 0
        if ok:
            reason = f"the {self.duration:g} s deadline left {unsent:,} unsent or in flight" if unsent else ""
        else:
            reason = f"{failed:,} failed, {unsent:,} not sent" + (" (interrupted)" if self._error else "")
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


def sink_args(request: SinkRequest) -> list[str]:
    """The built-in sink's command line for ``request`` (a port of None means any free port)."""
    listen = f"[{request.host}]" if ":" in request.host else request.host
    args = ["--listen", f"{listen}:{request.port or 0}", "--workers", str(request.workers)]
    if request.tempfail_percent:
        args += ["--tempfail-percent", f"{request.tempfail_percent:g}"]
    if request.permfail_percent:
        args += ["--permfail-percent", f"{request.permfail_percent:g}"]
    if request.max_message_size is not None:
        args += ["--max-message-size", str(request.max_message_size)]
    if request.idle_timeout is not None:
        args += ["--idle-timeout", f"{request.idle_timeout:g}"]
    if request.stamps:
        args += ["--stamps", request.stamps]
    if request.responses:
        args += ["--responses", request.responses]
    if request.metrics_listen:
        args += ["--metrics-listen", request.metrics_listen]
    if request.seed is not None:
        args += ["--seed", str(request.seed)]
    return args


def generator_args(request: LoadRequest) -> list[str]:
    """The built-in generator's command line for ``request``."""
    args = [
        "--target",
        request.target,
        "--concurrency",
        str(request.concurrency),
        "--body-size",
        str(request.body_size),
        "--workers",
        str(request.workers),
        "--messages-per-connection",
        str(request.per_connection),
        "--connect-timeout",
        f"{request.connect_timeout:g}",
    ]
    if request.messages is not None:
        args += ["--messages", str(request.messages)]
    if request.duration is not None:
        args += ["--duration", f"{request.duration:g}"]
    if request.rate is not None:
        args += ["--rate", f"{request.rate:g}"]
    if request.reply_timeout is not None:
        args += ["--reply-timeout", f"{request.reply_timeout:g}"]
    if request.stamp:
        args += ["--stamp", request.stamp]
    if request.worker_base:
        args += ["--worker-base", str(request.worker_base)]
    if not request.pipelining:
        args.append("--no-pipelining")
    if request.recipient:
        args += ["--recipient", request.recipient]
    args += destination_args(request)
    if request.allow_remote_target:
        args.append("--allow-remote-target")
    if request.allow_real_domains:
        args.append("--allow-real-domains")
    return args + list(request.extra_args)


def destination_args(request: LoadRequest) -> list[str]:
    """``--domain``, ``--domain-suffix`` and ``--header`` flags for the built-in generator."""
    args: list[str] = []
    for name, weight in request.domains:
        args += ["--domain", f"{name}:{weight:g}"]
    if request.domain_suffix is not None:
        args += ["--domain-suffix", request.domain_suffix]
    for header in request.headers:
        args += ["--header", header]
    return args


class BuiltinBackend:
    """kumotui's own engines, run with the launcher's Python."""

    name = Backend.BUILTIN

    def missing(self) -> str | None:
        """Never missing: the engines ship with kumotui and need only Python 3."""
        return None

    def sink(self, launcher: Launcher, request: SinkRequest) -> Job:
        """The built-in sink; a responses file goes where the sink runs (copied there for a remote one)."""
        if request.responses:
            request = replace(request, responses=launcher.ship(Path(request.responses)))
        return BuiltinSinkJob(launcher, sink_args(request))

    def generator(self, launcher: Launcher, request: LoadRequest) -> Job:
        """The built-in generator."""
        return BuiltinGenJob(launcher, generator_args(request), request.duration)


BACKEND = BuiltinBackend()
