"""KumoMTA's traffic-gen: its command line, its exact output, and the generator job.

Progress lines start with ``\\r\\x1b[K`` and have no newline; numbers carry
comma separators; durations are Rust's Duration debug format. Success is
judged from the output, never the exit status (0 even when every send failed)."""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kumotui.backends.job import ParsedGeneratorJob
from kumotui.backends.lines import LineSplitter, parse_size, strip_ansi
from kumotui.backends.process import Launcher
from kumotui.backends.samples import RateWindow, Sample, Summary
from kumotui.errors import KumotuiError
from kumotui.text.format import format_count

MIN_RATE_FOR_DURATION = 10
"""Messages per second assumed when sizing ``--duration`` for a message count:
slower than any published result (Postfix on 8 CPUs: about 40/s)."""


MIN_DURATION = 3600


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
    domains: tuple[tuple[str, float], ...] = (),
    headers: tuple[str, ...] = (),
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
        domains: finished recipient domains and weights (``--domain NAME:WEIGHT``,
            with ``--domain-suffix ''``: kumotui has suffixed them already).
        headers: ``Name: value`` lines for every message (``--header``).

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
    for name, weight in domains:
        command += ["--domain", f"{name}:{weight:g}"]
    if domains:
        command += ["--domain-suffix", ""]
    for header in headers:
        command += ["--header", header]
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


class TrafficGenJob(ParsedGeneratorJob):
    """KumoMTA's traffic-gen; success is judged from its output, not its exit status."""

    backend = "kumomta"
    _parser: TrafficGenOutput

    def __init__(self, launcher: Launcher, argv: list[str], *, messages: int | None, body_size: int) -> None:
        super().__init__(launcher, argv, name="traffic-gen")
        self._parser = TrafficGenOutput(expected_messages=messages, body_size=body_size)
        self._latest: Sample | None = None
        self._rates = RateWindow(3.0)

    def on_stdout(self, data: bytes) -> None:
        for sample in self._parser.feed_stdout(data, self.elapsed()):
            self._latest = sample

    def failures_so_far(self) -> dict[str, int]:
        with self._lock:
            return dict(self._parser.failures)

    def reading(self) -> Sample | None:
        with self._lock:
            latest = self._latest
        if latest is None:
            return None
        elapsed = self.elapsed()
        return Sample(
            role="generator",
            elapsed=elapsed,
            count=latest.count,
            failed=latest.failed,
            connections=latest.connections,
            rate=self._rates.add(elapsed, latest.count),
            bytes=latest.bytes,
        )

    def summary(self, series: list[Sample]) -> Summary | None:
        with self._lock:
            return self._parser.finish(self.elapsed())
