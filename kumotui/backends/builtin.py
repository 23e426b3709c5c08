"""The built-in backend: kumotui's own SMTP sink and generator (:mod:`kumotui.engines`).

The engines print JSON lines (ready, progress, summary, error); the jobs
here start them and turn those lines into samples and summaries."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from kumotui.backends.job import Job
from kumotui.backends.lines import LineSplitter
from kumotui.backends.lines import parse_size as parse_size
from kumotui.backends.process import Launcher
from kumotui.backends.samples import RateWindow, Role, Sample, Summary, active_summary


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
