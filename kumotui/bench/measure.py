"""What a run measured: the steady-state window, the whole run, and whether it is long enough.

A run's first seconds are not its steady state (connections open, caches
warm, the sink catches up) and its last ones drain the connections still
sending; a rate over everything, or over the engine's own clock that starts
after kumotui launched it, says more about start-up than about the host.
So every run is read three ways, each labelled wherever it is shown:

- the **window**: from the end of the warm-up to the last reading before the
  generator ended; the headline msgs/s and MMH;
- the **whole run**: every message over the wall time kumotui watched the
  generator, from launching it to its exit;
- **too short**: a window shorter than :data:`MIN_WINDOW` seconds, or with
  fewer than :data:`MIN_WINDOW_SAMPLES` readings, is marked and never compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kumotui.backends.samples import Role, Sample, mmh

WARMUP_SHARE = 0.10
"""The warm-up is this share of the generator's run..."""
WARMUP_MIN = 5.0
"""...but at least this many seconds."""
MIN_WINDOW = 30.0
"""Seconds of steady state a run needs before its rate is compared with anything."""
MIN_WINDOW_SAMPLES = 10
"""Readings the window needs (at 2 Hz, five seconds' worth)."""


@dataclass(frozen=True)
class Rate:
    """Messages over a stretch of time, and the rate they make."""

    seconds: float
    messages: int

    @property
    def msgs_per_s(self) -> float:
        """Messages per second (0 for an empty stretch)."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def mmh(self) -> float:
        """Millions of messages per hour, KumoMTA's unit."""
        return mmh(self.msgs_per_s)

    def as_json(self) -> dict[str, Any]:
        """The shape in run records and ``bench --json``."""
        return {
            "seconds": round(self.seconds, 3),
            "messages": self.messages,
            "msgs_per_s": round(self.msgs_per_s, 1),
            "mmh": round(self.mmh, 4),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rate:
        """Rebuild from :meth:`as_json`."""
        return cls(float(data["seconds"]), int(data["messages"]))


@dataclass(frozen=True)
class Measurement:
    """One side's count read as a window, a whole run, and a verdict on length."""

    role: Role
    """Whose count: the generator's (sent) or the sink's (received, or delivered through an MTA)."""
    whole_run: Rate
    window: Rate | None
    """None when no steady state could be found (too few readings)."""
    window_start: float = 0.0
    """Seconds into the run (the run's own clock) where the window starts..."""
    window_end: float = 0.0
    """...and ends."""
    warmup: float = 0.0
    """Seconds skipped at the start of the generator's run."""
    samples: int = 0
    """Readings inside the window."""
    too_short: str = ""
    """Why the run is too short to compare, or empty when it is long enough."""

    @property
    def headline(self) -> Rate:
        """The rate to lead with: the window's, or the whole run's when there is no window."""
        return self.window or self.whole_run

    def as_json(self) -> dict[str, Any]:
        """The shape in run records and ``bench --json``."""
        return {
            "role": self.role,
            "window": {
                **(self.window.as_json() if self.window else {}),
                "start": round(self.window_start, 3),
                "end": round(self.window_end, 3),
                "samples": self.samples,
                "warmup": round(self.warmup, 3),
            }
            if self.window
            else None,
            "whole_run": self.whole_run.as_json(),
            "too_short": self.too_short,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        """Rebuild from :meth:`as_json`."""
        window = data.get("window")
        return cls(
            role=data.get("role", "generator"),
            whole_run=Rate.from_json(data["whole_run"]),
            window=Rate.from_json(window) if window else None,
            window_start=float(window["start"]) if window else 0.0,
            window_end=float(window["end"]) if window else 0.0,
            warmup=float(window["warmup"]) if window else 0.0,
            samples=int(window["samples"]) if window else 0,
            too_short=str(data.get("too_short", "")),
        )


def seconds_between(first: Sample, last: Sample) -> float:
    """Seconds between two readings: on the source's own clock when both carry it (exact
    to the source's counting), else on the run's clock (exact to the 2 Hz poll)."""
    if first.clock is not None and last.clock is not None and last.clock > first.clock:
        return last.clock - first.clock
    return last.elapsed - first.elapsed


def warmup_for(active: float) -> float:
    """The warm-up for a generator that ran ``active`` seconds: 10% of it, at least 5 s."""
    return max(WARMUP_MIN, WARMUP_SHARE * active)


def measure(
    series: Sequence[Sample],
    *,
    launched: float,
    ended: float,
    role: Role = "generator",
    warmup: float | None = None,
    min_window: float = MIN_WINDOW,
) -> Measurement:
    """Read ``role``'s cumulative count in ``series`` (the run's clock) as a window and a whole run.

    Args:
        series: readings of both roles, elapsed on the run's clock.
        launched: when kumotui started the generator, on that clock.
        ended: when the generator exited (or was stopped), on that clock.
        role: whose count to read.
        warmup: seconds to skip after ``launched`` (default :func:`warmup_for`).
        min_window: seconds of window below which the run is too short.
    """
    readings = sorted((s for s in series if s.role == role), key=lambda s: s.elapsed)
    wall = max(0.0, ended - launched)
    before = [s.count for s in readings if s.elapsed <= launched]
    base = before[-1] if before else 0  # the count when the generator was launched
    final = readings[-1].count if readings else 0
    whole = Rate(wall, max(0, final - base))
    skip = warmup_for(wall) if warmup is None else warmup
    inside = [s for s in readings if launched + skip <= s.elapsed < ended]
    if len(inside) < 2:
        reason = f"no steady state: the generator ran {wall:.1f} s, less than the {skip:g} s warm-up and a window"
        return Measurement(role, whole, None, warmup=skip, too_short=reason)
    first, last = inside[0], inside[-1]
    window = Rate(seconds_between(first, last), last.count - first.count)
    too_short = ""
    if window.seconds < min_window:
        too_short = (
            f"too short: {window.seconds:.1f} s of steady state (after a {skip:g} s warm-up); {min_window:g} s needed"
        )
    elif len(inside) < MIN_WINDOW_SAMPLES:
        too_short = f"too short: {len(inside)} readings in the window; {MIN_WINDOW_SAMPLES} needed"
    return Measurement(role, whole, window, first.elapsed, last.elapsed, skip, len(inside), too_short)
