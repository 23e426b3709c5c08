"""One shape for benchmark numbers, whichever backend produced them.

KumoMTA's traffic-gen, kumod's ``/metrics``, Postfix's smtp-source and
smtp-sink counters and kumotui's own engines all report differently; their
parsers map what they read into :class:`Sample` (a progress reading) and
:class:`Summary` (the end of a run), so the job model, the UI, the CLI and
run records handle one type each.

Units: elapsed times in seconds, rates in messages per second, latencies in
milliseconds, sizes in bytes. MMH is millions of messages per hour, the unit
KumoMTA publishes its results in.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from kumotui.engines.smtp_common import BUCKETS, BUCKETS_PER_OCTAVE, histogram_summary

Role = Literal["sink", "generator"]
LATENCY_KEYS = ("p50", "p90", "p95", "p99", "max")
"""The latency figures a :class:`Summary` keeps (milliseconds)."""


def mmh(msgs_per_s: float) -> float:
    """Millions of messages per hour from messages per second."""
    return msgs_per_s * 3600 / 1e6


@dataclass(frozen=True)
class Sample:
    """One progress reading from a sink or a generator.

    Counters are cumulative since the process started, so a lost reading
    costs resolution, never accuracy.
    """

    role: Role
    elapsed: float
    """Seconds since the job started, on the reader's clock."""
    count: int
    """Messages sent (generator) or received (sink) so far."""
    failed: int = 0
    """Transactions (or client tasks) that failed so far."""
    connections: int | None = None
    """Open SMTP sessions (sink) or running clients (generator), when known."""
    rate: float | None = None
    """Messages per second now, as the source or a :class:`RateWindow` saw it."""
    latency_ms: Mapping[str, float] | None = None
    """Transaction latency percentiles (``p50``, ``p99``, ...) when the source gives them."""
    bytes: int | None = None
    """Message bytes moved so far, when known."""
    clock: float | None = None
    """Seconds on the source's own clock when it counted (an engine's ``elapsed``), when it says:
    rates over a window use it, so the poll's jitter does not enter them."""

    def as_json(self) -> dict[str, Any]:
        """A compact JSON shape: fields that are None are left out."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                data[f.name] = dict(value) if f.name == "latency_ms" else value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        """Rebuild a sample from :meth:`as_json`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Summary:
    """The end result of one side of a run."""

    role: Role
    count: int
    """Messages sent (generator) or received (sink)."""
    failed: int
    elapsed: float
    """Seconds the count took (for a sink: its active period)."""
    msgs_per_s: float
    mmh: float
    mb_per_s: float | None = None
    """None when the backend does not say how many bytes moved."""
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    failures: Mapping[str, int] = field(default_factory=dict)
    """How many failures of each kind, keyed by the backend's own wording."""
    ok: bool = True
    reason: str = ""
    """Why the run is not ok (or a note when it is), in one sentence."""

    @classmethod
    def build(
        cls,
        role: Role,
        *,
        count: int,
        failed: int,
        elapsed: float,
        msgs_per_s: float | None = None,
        bytes: int | None = None,
        latency_ms: Mapping[str, float] | None = None,
        failures: Mapping[str, int] | None = None,
        ok: bool = True,
        reason: str = "",
    ) -> Summary:
        """A summary with the derived figures computed one way for every backend.

        ``msgs_per_s`` is taken as given when the backend reports it (its own
        clock is better than ours), else computed from count and elapsed.
        """
        rate = msgs_per_s if msgs_per_s is not None else (count / elapsed if elapsed > 0 else 0.0)
        mb_per_s = bytes / elapsed / 1e6 if bytes is not None and elapsed > 0 else None
        latency = latency_ms or {}
        return cls(
            role=role,
            count=count,
            failed=failed,
            elapsed=elapsed,
            msgs_per_s=rate,
            mmh=mmh(rate),
            mb_per_s=mb_per_s,
            latency_p50_ms=latency.get("p50"),
            latency_p90_ms=latency.get("p90"),
            latency_p95_ms=latency.get("p95"),
            latency_p99_ms=latency.get("p99"),
            latency_max_ms=latency.get("max"),
            failures=dict(failures or {}),
            ok=ok,
            reason=reason,
        )

    @property
    def latency_ms(self) -> dict[str, float]:
        """The known latency figures keyed like :data:`LATENCY_KEYS`."""
        values = {key: getattr(self, f"latency_{key}_ms") for key in LATENCY_KEYS}
        return {k: v for k, v in values.items() if v is not None}

    def as_json(self) -> dict[str, Any]:
        """The stored shape (run records, ``--json``)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["failures"] = dict(self.failures)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """Rebuild a summary from :meth:`as_json`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class LatencyHistogram:
    """The built-in generator's latency histogram: fixed log buckets, so histograms merge by addition.

    Percentiles of a merged histogram are exactly those of all its
    transactions together (to the bucket's width, about 4.5%), which
    percentiles of the parts could never give.
    """

    counts: Mapping[int, int]
    """Transactions per bucket index (non-empty buckets only)."""
    sum_us: int = 0
    max_us: float = 0.0

    @classmethod
    def from_line(cls, line: Mapping[str, Any]) -> LatencyHistogram | None:
        """The histogram of an engine line (``latency_histogram`` and ``latency_ms.max``), None without one."""
        hist = line.get("latency_histogram")
        if not isinstance(hist, Mapping) or hist.get("buckets_per_octave") != BUCKETS_PER_OCTAVE:
            return None
        counts = {int(k): int(v) for k, v in (hist.get("counts") or {}).items() if int(v)}
        latency = line.get("latency_ms") or {}
        return cls(counts, int(hist.get("sum_us", 0)), float(latency.get("max", 0.0)) * 1000)

    @classmethod
    def merge(cls, parts: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """The histogram of every part's transactions together: bucket counts and sums add, maxima take the max."""
        counts: dict[int, int] = {}
        total_us, max_us = 0, 0.0
        for part in parts:
            for index, count in part.counts.items():
                counts[index] = counts.get(index, 0) + count
            total_us += part.sum_us
            max_us = max(max_us, part.max_us)
        return cls(counts, total_us, max_us)

    @property
    def total(self) -> int:
        """Transactions counted."""
        return sum(self.counts.values())

    def percentiles(self) -> dict[str, float]:
        """p50/p90/p95/p99/max/avg in milliseconds, computed as the engine computes its own."""
        dense = [0] * BUCKETS
        for index, count in self.counts.items():
            dense[min(max(index, 0), BUCKETS - 1)] += count
        return histogram_summary(dense, self.max_us, self.sum_us)


class RateWindow:
    """Messages per second over a sliding window of cumulative counts.

    A rate from the last two readings jumps with every scheduling hiccup;
    over a few seconds it reads like ``kcli top``. The deque holds only the
    readings inside the window (plus one just before it), so memory is
    bounded however long a run lasts.
    """

    def __init__(self, window: float = 5.0) -> None:
        """Keep about ``window`` seconds of readings."""
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self._points: deque[tuple[float, int]] = deque()

    def add(self, when: float, count: int) -> float | None:
        """Record a cumulative count at time ``when``; returns the new rate.

        A count lower than the previous one means the source restarted, so
        the window starts over rather than reporting a negative rate.
        """
        if self._points and (count < self._points[-1][1] or when < self._points[-1][0]):
            self._points.clear()
        self._points.append((when, count))
        while len(self._points) > 2 and when - self._points[1][0] >= self.window:
            self._points.popleft()
        return self.rate()

    def rate(self) -> float | None:
        """Messages per second across the window; None until two readings apart in time."""
        if len(self._points) < 2:
            return None
        (t0, c0), (t1, c1) = self._points[0], self._points[-1]
        if t1 <= t0:
            return None
        return (c1 - c0) / (t1 - t0)


def eta_seconds(done: int, total: int | None, rate: float | None) -> float | None:
    """Seconds left to reach ``total`` at ``rate``; None when unknowable."""
    if total is None or rate is None or rate <= 0:
        return None
    return max(0, total - done) / rate


def active_summary(
    role: Role,
    samples: Sequence[Sample],
    *,
    failures: Mapping[str, int] | None = None,
    ok: bool = True,
    reason: str = "",
) -> Summary:
    """A summary over the period in which the count was moving.

    A sink runs before and after the generator; dividing its count by its
    whole lifetime would understate the rate. The active period runs from
    the last reading before the count first moved to the first reading at
    the final count.
    """
    ordered = sorted((s for s in samples if s.role == role), key=lambda s: s.elapsed)
    if not ordered:
        return Summary.build(role, count=0, failed=0, elapsed=0.0, failures=failures, ok=False, reason="no readings")
    base, final = ordered[0], ordered[-1]
    start_index = next((i for i, s in enumerate(ordered) if s.count > base.count), None)
    if start_index is None:
        count = final.count - base.count
        return Summary.build(
            role, count=count, failed=final.failed, elapsed=0.0, failures=failures, ok=ok and count > 0, reason=reason
        )
    start = ordered[start_index - 1] if start_index > 0 else base
    end = next(s for s in ordered if s.count == final.count)
    moved_bytes = end.bytes - start.bytes if end.bytes is not None and start.bytes is not None else None
    return Summary.build(
        role,
        count=end.count - start.count,
        failed=final.failed - start.failed,
        elapsed=end.elapsed - start.elapsed,
        bytes=moved_bytes,
        failures=failures,
        ok=ok,
        reason=reason,
    )


def thin_series(samples: Iterable[Sample], limit: int) -> list[Sample]:
    """At most ``limit`` samples per role, evenly spaced, always keeping the last.

    Run records keep a per-second series; an hours-long soak would otherwise
    make records (and reports) grow without bound.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    by_role: dict[str, list[Sample]] = {}
    for sample in samples:
        by_role.setdefault(sample.role, []).append(sample)
    kept: list[Sample] = []
    for series in by_role.values():
        if len(series) <= limit:
            kept.extend(series)
            continue
        step = math.ceil((len(series) - 1) / (limit - 1))
        picked = series[::step]
        if picked[-1] is not series[-1]:
            picked = [*picked[: limit - 1], series[-1]]
        kept.extend(picked)
    return sorted(kept, key=lambda s: (s.elapsed, s.role))
