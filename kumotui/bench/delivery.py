"""Per-message accounting through an MTA under test: injected, delivered, lost, duplicated, how late.

A run through an MTA has two counts that must agree: what the MTA accepted
from the generator (*injected*) and what the sink got from the MTA
(*delivered*). Counts alone can hide a loss behind a duplicate, so the
built-in generator stamps every message with a unique id and its send time
(``X-Kumotui-Stamp``) and the built-in sink reads it back; each side reports
its ids as ranges, and this module subtracts them. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kumotui.engines.smtp_common import PROBE_WORKER, WORKER_SHIFT, IdRanges

Ranges = Sequence[Sequence[int]]
"""``[[start, end], ...]``: sorted, disjoint, end exclusive (as the engines report them)."""

LOST_LISTED = 20
"""Lost message ids kept in a record (the count is always exact)."""


def size_of(ranges: Ranges) -> int:
    """How many ids the ranges hold."""
    return sum(end - start for start, end in ranges)


def without_probes(ranges: Ranges) -> list[list[int]]:
    """The ranges minus the routing probes' ids (worker :data:`PROBE_WORKER`)."""
    low = PROBE_WORKER << WORKER_SHIFT
    high = (PROBE_WORKER + 1) << WORKER_SHIFT
    kept = []
    for start, end in ranges:
        if end <= low or start >= high:
            kept.append([start, end])
            continue
        if start < low:
            kept.append([start, low])
        if end > high:
            kept.append([high, end])
    return kept


def intersect(a: Ranges, b: Ranges) -> list[list[int]]:
    """Ids in both."""
    out: list[list[int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append([start, end])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Ranges, b: Ranges) -> list[list[int]]:
    """Ids in ``a`` and not in ``b``."""
    out: list[list[int]] = []
    j = 0
    for start, end in a:
        cursor = start
        while j < len(b) and b[j][1] <= cursor:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append([cursor, b[k][0]])
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < end:
            out.append([cursor, end])
    return out


def first_ids(ranges: Ranges, limit: int = LOST_LISTED) -> list[str]:
    """Up to ``limit`` ids as ``worker:sequence`` (how the stamps number them)."""
    ids: list[str] = []
    for start, end in ranges:
        for ident in range(start, min(end, start + limit - len(ids))):
            ids.append(f"{ident >> WORKER_SHIFT}:{ident & ((1 << WORKER_SHIFT) - 1)}")
        if len(ids) >= limit:
            break
    return ids


def union(lists: Iterable[Ranges]) -> list[list[int]]:
    """The union of several id range lists."""
    return IdRanges.union([[list(r) for r in ranges] for ranges in lists])


@dataclass(frozen=True)
class Probe:
    """The routing probe before the load: did messages sent through the MTA reach the sink?"""

    sent: int
    arrived: int
    seconds: float
    """Until the last one arrived, or until the deadline."""
    mta_banner: str = ""
    """The MTA's greeting (``mx1 ESMTP Postfix (Debian/GNU)``): which MTA answered."""

    @property
    def mta_kind(self) -> str:
        """``kumomta``, ``postfix`` or ``unknown``: which MTA answered, by its greeting."""
        banner = self.mta_banner.lower()
        return next((kind for kind in ("kumomta", "postfix") if kind in banner), "unknown")

    @property
    def ok(self) -> bool:
        """Every probe arrived."""
        return self.sent > 0 and self.arrived == self.sent

    def as_json(self) -> dict[str, Any]:
        """The shape in run records and ``bench --json``."""
        return {
            "sent": self.sent,
            "arrived": self.arrived,
            "seconds": round(self.seconds, 3),
            "mta_banner": self.mta_banner,
            "mta_kind": self.mta_kind,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Probe:
        """Rebuild from :meth:`as_json`."""
        return cls(int(data["sent"]), int(data["arrived"]), float(data["seconds"]), str(data.get("mta_banner", "")))


@dataclass(frozen=True)
class Delivery:
    """What happened to every message of a run through an MTA."""

    injected: int
    """Messages the MTA accepted from the generator."""
    delivered: int
    """Of those, messages that reached the sink (each counted once)."""
    lost: int
    """Accepted by the MTA and not at the sink when the drain ended."""
    duplicated: int
    """Deliveries beyond the first of a message."""
    per_message: bool = True
    """False when the generator cannot stamp messages (traffic-gen, smtp-source): counts only."""
    lost_ids: tuple[str, ...] = ()
    """The first :data:`LOST_LISTED` lost messages, ``worker:sequence``."""
    unexpected: int = 0
    """Messages the sink got that the generator did not count as accepted (it saw an error, the MTA
    relayed anyway)."""
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    """End-to-end delivery latency: sink receive time minus generator send time."""
    clock: str = ""
    """How the two times compare: same host, or what is known of the offset."""
    drain_seconds: float = 0.0
    """Seconds spent waiting for the MTA's backlog after the generator ended."""
    probe: Probe | None = None
    bounced: int = 0
    """Injected messages the sink refused for good (a Smart Sink's 5xx): the MTA gives them up, so not lost."""
    deferred: int = 0
    """Injected messages the sink deferred (4xx) at least once."""
    deferred_delivered: int = 0
    """Of those, messages the MTA retried until the sink accepted them."""
    deferrals: int = 0
    """Every 4xx the sink gave the run's messages (a message deferred twice counts twice)."""
    clock_offset_ms: float | None = None
    """The sink host's clock minus the generator host's, measured over the agent channel (None: same host,
    or not measured); already taken out of :attr:`latency_ms`."""
    clock_uncertainty_ms: float | None = None
    """How far the true offset may be from :attr:`clock_offset_ms` (half the best round trip, each host)."""

    def as_json(self) -> dict[str, Any]:
        """The shape in run records and ``bench --json``."""
        return {
            "per_message": self.per_message,
            "injected": self.injected,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "lost_ids": list(self.lost_ids),
            "latency_ms": dict(self.latency_ms),
            "clock": self.clock,
            "drain_seconds": round(self.drain_seconds, 3),
            "probe": self.probe.as_json() if self.probe else None,
            "bounced": self.bounced,
            "deferred": self.deferred,
            "deferred_delivered": self.deferred_delivered,
            "deferrals": self.deferrals,
            "clock_offset_ms": self.clock_offset_ms,
            "clock_uncertainty_ms": self.clock_uncertainty_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delivery:
        """Rebuild from :meth:`as_json`."""
        return cls(
            injected=int(data["injected"]),
            delivered=int(data["delivered"]),
            lost=int(data["lost"]),
            duplicated=int(data["duplicated"]),
            per_message=bool(data.get("per_message", True)),
            lost_ids=tuple(str(i) for i in data.get("lost_ids", [])),
            unexpected=int(data.get("unexpected", 0)),
            latency_ms={str(k): float(v) for k, v in (data.get("latency_ms") or {}).items()},
            clock=str(data.get("clock", "")),
            drain_seconds=float(data.get("drain_seconds", 0.0)),
            probe=Probe.from_json(data["probe"]) if data.get("probe") else None,
            bounced=int(data.get("bounced", 0)),
            deferred=int(data.get("deferred", 0)),
            deferred_delivered=int(data.get("deferred_delivered", 0)),
            deferrals=int(data.get("deferrals", 0)),
            clock_offset_ms=_optional_float(data.get("clock_offset_ms")),
            clock_uncertainty_ms=_optional_float(data.get("clock_uncertainty_ms")),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Clocks:
    """How the sink's receive times compare with the generators' send times: what latency needs."""

    text: str
    """Said beside the latency: same host, or the measured offset and what was done with it."""
    offset_ms: float | None = None
    """Sink clock minus generator clock, taken out of the latency (None: nothing to take out)."""
    uncertainty_ms: float | None = None

    def corrected(self, latency_ms: Mapping[str, float]) -> dict[str, float]:
        """Latency percentiles with the offset taken out (never below zero)."""
        if not self.offset_ms:
            return dict(latency_ms)
        return {name: max(0.0, round(value - self.offset_ms, 3)) for name, value in latency_ms.items()}


SAME_HOST = Clocks("same host: one clock")


def compare_clocks(
    sink: tuple[str, float, float] | None, generators: Sequence[tuple[str, float, float]], error: str = ""
) -> Clocks:
    """The sink's clock against the generators', from each host's measured ``(name, offset s, ± s)`` to ours.

    One generator host: its offset to the sink is taken out of the latency. Several: they share one
    histogram at the sink, so nothing is taken out, and the spread is said. ``error``: why the offsets
    could not be measured (a link went down).
    """
    if error or sink is None or not generators:
        return Clocks(f"different hosts: latency includes the offset between their clocks (not measured: {error})")
    if len(generators) > 1:
        skews = [(sink[1] - offset) * 1000 for _, offset, _ in generators]
        return Clocks(
            f"different hosts: sink clock minus each generator's {min(skews):+.1f} to {max(skews):+.1f} ms, "
            "measured over the agent channel; not taken out (the generators share one latency histogram)"
        )
    name, offset, uncertainty = generators[0]
    skew = (sink[1] - offset) * 1000
    spread = (sink[2] + uncertainty) * 1000
    return Clocks(
        f"different hosts: the sink's clock ({sink[0]}) is {skew:+.1f} ms ± {spread:.1f} ms from the generator's "
        f"({name}), measured over the agent channel and taken out of the latency",
        offset_ms=round(skew, 3),
        uncertainty_ms=round(spread, 3),
    )


def account(
    accepted: Ranges,
    delivered: Ranges,
    stamped: int,
    *,
    latency_ms: Mapping[str, float],
    clock: Clocks,
    drain_seconds: float,
    probe: Probe | None,
    deferred: Ranges = (),
    bounced: Ranges = (),
    deferrals: int = 0,
) -> Delivery:
    """Per-message accounting from the generator's accepted ids and the sink's delivered ids.

    ``stamped`` is every stamped delivery the sink counted, a message delivered
    twice counted twice, probes not counted; the set difference gives the rest.
    With a Smart Sink, ``deferred`` and ``bounced`` are the ids it answered 4xx
    and 5xx: a bounced message is the MTA's to give up, not lost, and a
    deferred one that is also delivered was retried until it got through.
    """
    got = without_probes(delivered)
    both = intersect(accepted, got)
    gave_up = subtract(intersect(accepted, bounced), got)
    lost = subtract(subtract(accepted, got), gave_up)
    pushed = intersect(accepted, deferred)
    return Delivery(
        injected=size_of(accepted),
        delivered=size_of(both),
        lost=size_of(lost),
        duplicated=max(0, stamped - size_of(got)),
        lost_ids=tuple(first_ids(lost)),
        unexpected=size_of(subtract(got, accepted)),
        latency_ms=clock.corrected(latency_ms),
        clock=clock.text,
        clock_offset_ms=clock.offset_ms,
        clock_uncertainty_ms=clock.uncertainty_ms,
        drain_seconds=drain_seconds,
        probe=probe,
        bounced=size_of(gave_up),
        deferred=size_of(pushed),
        deferred_delivered=size_of(intersect(pushed, got)),
        deferrals=deferrals,
    )


COUNT_LEVEL = "count-level only: the generator does not stamp messages"


def counted(
    injected: int, received: int, *, drain_seconds: float, probe: Probe | None, why: str = COUNT_LEVEL
) -> Delivery:
    """Count-level accounting, for generators that cannot stamp or a sink that does not read the stamps:
    no ids, no latency, no duplicates; ``why`` says which."""
    delivered = min(injected, received)
    return Delivery(
        injected=injected,
        delivered=delivered,
        lost=injected - delivered,
        duplicated=0,
        per_message=False,
        unexpected=max(0, received - injected),
        clock=why,
        drain_seconds=drain_seconds,
        probe=probe,
    )
