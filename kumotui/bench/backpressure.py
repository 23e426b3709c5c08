"""Backpressure: what a Smart Sink (``--responses``) answered, per recipient domain, for the records and reports.

Why: a benchmark into a sink that pushes back is only readable next to the
pushback it applied: which domains were deferred or bounced, how often, with
which codes. The sink counts them per domain (its ``domains`` and
``domain_replies`` JSON fields); this module turns those counters into rows
that a run record keeps and a report shows. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kumotui.text.escape import printable
from kumotui.text.format import format_count


@dataclass(frozen=True)
class DomainPushback:
    """One recipient domain's answers at the sink (each attempt counted: a retried message counts again)."""

    domain: str
    accepted: int
    deferred: int
    """4xx answers (refused recipients included)."""
    bounced: int
    """5xx answers."""
    codes: Mapping[str, int] = field(default_factory=dict)
    """Answers by reply code (``"421"``), 4xx and 5xx only."""

    @property
    def attempts(self) -> int:
        """Every answer given for this domain."""
        return self.accepted + self.deferred + self.bounced

    def share(self, count: int) -> float:
        """``count`` as a share of this domain's attempts (0 without any)."""
        return count / self.attempts if self.attempts else 0.0

    def as_json(self) -> dict[str, Any]:
        """The shape in run records."""
        return {
            "domain": self.domain,
            "accepted": self.accepted,
            "deferred": self.deferred,
            "bounced": self.bounced,
            "codes": dict(self.codes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DomainPushback:
        """Rebuild from :meth:`as_json`."""
        return cls(
            str(data["domain"]),
            int(data["accepted"]),
            int(data["deferred"]),
            int(data["bounced"]),
            {str(k): int(v) for k, v in (data.get("codes") or {}).items()},
        )


def domain_pushback(line: Mapping[str, Any]) -> tuple[DomainPushback, ...]:
    """The per-domain rows of a sink's (final) JSON line, busiest domain first; empty without a responses file."""
    domains: Mapping[str, Mapping[str, Any]] = line.get("domains") or {}
    replies: Mapping[str, Any] = line.get("domain_replies") or {}
    codes: dict[str, dict[str, int]] = {}
    for key, count in replies.items():
        name, _, code = str(key).rpartition(" ")
        codes.setdefault(name, {})[code] = int(count)
    rows = [
        DomainPushback(
            str(name),
            int(counts.get("accepted", 0)),
            int(counts.get("deferred", 0)),
            int(counts.get("bounced", 0)),
            dict(sorted(codes.get(str(name), {}).items())),
        )
        for name, counts in domains.items()
    ]
    return tuple(sorted(rows, key=lambda row: (-row.attempts, row.domain)))


def pushback_line(rows: tuple[DomainPushback, ...], limit: int = 3) -> str:
    """The live sink pane's one line: deferrals/bounces so far for the most pushed-back domains; empty if none.

    Why one line of the busiest few: the pane has room for one, and the
    domains a Smart Sink pushes back on are the ones whose queues matter.
    """
    pushed = sorted((r for r in rows if r.deferred or r.bounced), key=lambda r: (-(r.deferred + r.bounced), r.domain))
    if not pushed:
        return ""
    parts = [f"{printable(r.domain)} {format_count(r.deferred)}/{format_count(r.bounced)}" for r in pushed[:limit]]
    more = f" · +{format_count(len(pushed) - limit)} more" if len(pushed) > limit else ""
    return "deferred/bounced: " + " · ".join(parts) + more
