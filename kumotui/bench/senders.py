"""Generators on several hosts as one run: each host's share, and their numbers merged exactly.

When one sending machine is the bottleneck, a run spreads its generator over
several hosts. The run's totals (messages, connections, rate) are shared
between the hosts the way the built-in generator shares them between its
worker processes, so they add up exactly; each host's stamp ids start at a
worker index of their own, so a run through an MTA can still account for
every message. Counters merge by addition, latency by adding the engines'
fixed-bucket histograms (never by averaging percentiles). Nothing here does
I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kumotui.backends import LoadRequest
from kumotui.backends.samples import LatencyHistogram, Sample, Summary
from kumotui.engines.smtp_gen import split


@dataclass(frozen=True)
class SenderResult:
    """One generator host's part of a run: its own summary, or why it has none."""

    host: str
    """The host as the user named it (``local`` for this machine)."""
    summary: Summary | None
    unsent: int | None = None
    """Messages of its share never sent or left in flight (None when it left no summary)."""
    error: str = ""
    """Why this host's generator ended without a summary (its SSH link dropped, it crashed)."""
    latency_histogram: LatencyHistogram | None = None

    @property
    def ok(self) -> bool:
        """This host's generator finished and sent its share as asked."""
        return self.summary is not None and self.summary.ok and not self.error

    def as_json(self) -> dict[str, Any]:
        """The shape in run records and ``bench --json``'s ``generators`` list."""
        summary = self.summary
        return {
            "host": self.host,
            "sent": summary.count if summary else None,
            "failed": summary.failed if summary else None,
            "unsent": self.unsent,
            "msgs_per_s": round(summary.msgs_per_s, 1) if summary else None,
            "elapsed": round(summary.elapsed, 3) if summary else None,
            "latency_ms": summary.latency_ms if summary else {},
            "ok": self.ok,
            "error": self.error or (summary.reason if summary and not summary.ok else ""),
            "summary": summary.as_json() if summary else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SenderResult:
        """Rebuild from :meth:`as_json`."""
        summary = data.get("summary")
        unsent = data.get("unsent")
        return cls(
            host=str(data["host"]),
            summary=Summary.from_json(summary) if summary else None,
            unsent=int(unsent) if unsent is not None else None,
            error=str(data.get("error") or "") if not summary else "",
        )


def share(load: LoadRequest, hosts: int, index: int) -> LoadRequest:
    """Host ``index``'s share of ``load`` among ``hosts``: messages, connections and rate split exactly,
    and a first stamp worker of its own (``index * workers``) so that ids never collide across hosts."""
    if hosts <= 1:
        return load
    return replace(
        load,
        messages=split(load.messages, hosts, index),
        concurrency=split(load.concurrency, hosts, index) or 1,
        rate=load.rate / hosts if load.rate else None,
        worker_base=load.worker_base + index * load.workers,
    )


def _total(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def merged_sample(samples: Sequence[Sample], histograms: Sequence[LatencyHistogram | None], elapsed: float) -> Sample:
    """One generator reading for every host's latest: counts, connections, bytes and rates add;
    latency from the merged histograms (of the hosts that have one yet)."""
    known = [h for h in histograms if h is not None]
    connections = _total([s.connections for s in samples])
    sent_bytes = _total([s.bytes for s in samples])
    return Sample(
        role="generator",
        elapsed=elapsed,
        count=sum(s.count for s in samples),
        failed=sum(s.failed for s in samples),
        connections=int(connections) if connections is not None else None,
        rate=_total([s.rate for s in samples]),
        latency_ms=LatencyHistogram.merge(known).percentiles() if known else None,
        bytes=int(sent_bytes) if sent_bytes is not None else None,
    )


def merged_summary(parts: Sequence[SenderResult]) -> Summary | None:
    """The run's generator summary from every host's part: exact sums, the longest clock, merged latency.

    The rate is the total over the longest host's clock: the hosts start
    together, so this is what they sent together (never above the sum of
    their own rates). Not ok when any host is not, each host's reason named.
    """
    done = [p for p in parts if p.summary is not None]
    if not done:
        return None
    summaries = [p.summary for p in done if p.summary is not None]
    elapsed = max(s.elapsed for s in summaries)
    count = sum(s.count for s in summaries)
    failures: dict[str, int] = {}
    for summary in summaries:
        for reason, n in summary.failures.items():
            failures[reason] = failures.get(reason, 0) + n
    moved = [s.mb_per_s * s.elapsed * 1e6 for s in summaries if s.mb_per_s is not None]
    histograms = [p.latency_histogram for p in done if p.latency_histogram is not None]
    latency = LatencyHistogram.merge(histograms).percentiles() if len(histograms) == len(done) else None
    problems = [f"{p.host}: {p.error or (p.summary.reason if p.summary else '')}" for p in parts if not p.ok]
    notes = [f"{p.host}: {p.summary.reason}" for p in done if p.ok and p.summary is not None and p.summary.reason]
    return Summary.build(
        "generator",
        count=count,
        failed=sum(s.failed for s in summaries),
        elapsed=elapsed,
        msgs_per_s=count / elapsed if elapsed > 0 else 0.0,
        bytes=int(sum(moved)) if len(moved) == len(summaries) else None,
        latency_ms=latency,
        failures=failures,
        ok=not problems,
        reason="; ".join(problems or notes),
    )
