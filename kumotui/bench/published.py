"""KumoMTA's published throughput figures, for "your MMH vs published" comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kumotui.bench.records import RunRecord


@dataclass(frozen=True)
class PublishedResult:
    """One result KumoMTA published, for "your MMH vs published" comparisons."""

    study: str
    """Key into :data:`PUBLISHED_STUDIES`."""
    software: str
    """``KumoMTA`` or ``Postfix``."""
    setup: str
    """The machine as published (instance type or sender size)."""
    cpus: int
    memory_gb: int
    mmh: float


PUBLISHED_BODY_SIZE = 100_000
"""Every published figure used 100 KB messages."""


PUBLISHED_STUDIES = {
    "seed": "KumoMTA performance docs: 100 KB messages x 100,000, AWS sender vs. an 8 CPU / 16 GB sink",
    "2023-07": "July 2023, 100 KB messages, KumoMTA vs. Postfix on the same AWS instance",
}


PUBLISHED_RESULTS: tuple[PublishedResult, ...] = (
    PublishedResult("seed", "KumoMTA", "2 CPU / 4 GB sender", 2, 4, 2.7),
    PublishedResult("seed", "KumoMTA", "4 CPU / 16 GB sender", 4, 16, 4.4),
    PublishedResult("seed", "KumoMTA", "8 CPU / 30 GB sender", 8, 30, 4.9),
    PublishedResult("seed", "KumoMTA", "16 CPU / 64 GB sender", 16, 64, 5.1),
    PublishedResult("2023-07", "KumoMTA", "c5.2xlarge", 8, 16, 4.034),
    PublishedResult("2023-07", "KumoMTA", "c5.4xlarge", 16, 32, 4.434),
    PublishedResult("2023-07", "KumoMTA", "c5a.8xlarge", 32, 64, 5.096),
    PublishedResult("2023-07", "KumoMTA", "c6g.16xlarge", 64, 128, 6.086),
    PublishedResult("2023-07", "KumoMTA", "c5.24xlarge", 96, 192, 6.831),
    PublishedResult("2023-07", "Postfix", "c5.2xlarge", 8, 16, 0.15),
    PublishedResult("2023-07", "Postfix", "c5.4xlarge", 16, 32, 0.22),
    PublishedResult("2023-07", "Postfix", "c5a.8xlarge", 32, 64, 0.30),
    PublishedResult("2023-07", "Postfix", "c6g.16xlarge", 64, 128, 0.41),
    PublishedResult("2023-07", "Postfix", "c5.24xlarge", 96, 192, 0.50),
)


PLANNING_GUIDANCE = (
    "KumoMTA's architecture docs suggest planning 4-6 MMH per node, "
    "with 16 cores / 32 GB as a starting point and 10 Gbps networking."
)


def closest_published(cpus: int, software: str = "KumoMTA") -> list[PublishedResult]:
    """Per study, the published result whose CPU count is closest to ``cpus`` (a tie: the smaller machine)."""
    best: dict[str, PublishedResult] = {}
    for result in PUBLISHED_RESULTS:
        if result.software != software:
            continue
        current = best.get(result.study)
        if current is None or abs(result.cpus - cpus) < abs(current.cpus - cpus):
            best[result.study] = result
    return list(best.values())


def versus_published(mmh_value: float, cpus: int) -> str:
    """``73% of 4.9 MMH (8 CPU / 30 GB sender), 89% of 4.034 MMH (c5.2xlarge)``: a run against
    KumoMTA's closest published results, one per study."""
    parts = [f"{mmh_value / r.mmh * 100:.0f}% of {r.mmh:g} MMH ({r.setup})" for r in closest_published(cpus, "KumoMTA")]
    return ", ".join(parts)


def comparability(run: RunRecord) -> str:
    """Why ``run`` cannot be set against the published figures, in one line; empty when it can.

    The published table measures an MTA relaying 100 KB messages to a sink
    (KumoMTA's procedure), over a run long enough to be steady. A run of
    kumotui's (or Postfix's, or traffic-gen's) generator straight into a sink
    measures the harness, not an MTA: a calibration, never a result to rate.
    """
    reasons = []
    if not run.config.through:
        reasons.append(f"no MTA in the path (the {run.backend} generator sent straight to a sink: a calibration)")
    size = run.config.body_size
    if size is not None and size != PUBLISHED_BODY_SIZE:
        reasons.append(f"{size:,}-byte messages (published: {PUBLISHED_BODY_SIZE:,})")
    measured = run.measurement
    if measured is None:
        reasons.append("no steady-state window recorded")
    elif measured.too_short:
        reasons.append(measured.too_short)
    if run.stopped:
        reasons.append("stopped early")
    return ("Not comparable with KumoMTA's published figures: " + "; ".join(reasons) + ".") if reasons else ""
