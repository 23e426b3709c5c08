"""The one set of number formatters: counts, rates, MMH, milliseconds, sizes, durations.

Every face (the CLI, the report, the app's panes) formats a figure through
these functions, so the same run reads the same everywhere."""

from __future__ import annotations

import math

DASH = "–"


def format_count(value: int | None) -> str:
    """``1,234``; a dash when unknown."""
    return f"{value:,}" if value is not None else DASH


def format_rate(value: float | None) -> str:
    """Messages per second: whole numbers from 100 up, one decimal below; a dash when unknown."""
    if value is None:
        return DASH
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def format_mmh(value: float | None) -> str:
    """MMH to the precision KumoMTA publishes (``4.034``); fewer decimals for big local figures."""
    if value is None:
        return DASH
    if value >= 100:
        return f"{value:,.1f}"
    if value >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_ms(value: float | None) -> str:
    """Milliseconds to three significant figures (``0.412``, ``3.02``, ``41.2``), whole from 100 (``1,204``)."""
    if value is None:
        return DASH
    if value >= 99.95:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.001 else "0"


def format_seconds(value: float | None) -> str:
    """A duration as ``20.0 s``; a dash when unknown."""
    return f"{value:,.1f} s" if value is not None else DASH


def format_mb_rate(value: float | None) -> str:
    """Message bytes per second in MB/s (``12.3``), as the report's tables show them."""
    return f"{value:,.1f}" if value is not None else DASH


def format_eta(seconds: float | None) -> str:
    """``0:07``, ``12:30``, ``1:02:03``; a dash when unknown."""
    if seconds is None:
        return DASH
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def format_size(value: int) -> str:
    """Message size as the form takes it: ``1 KB``, ``100 KB``, ``1.5 MB``, ``512 B`` (decimal units)."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1000)):
        if value >= scale:
            shown = value / scale
            return f"{shown:g} {unit}" if shown == int(shown) else f"{shown:.1f} {unit}"
    return f"{value} B"


def format_bytes(value: float | None) -> str:
    """Memory in binary units (``15.6 GiB``, ``512 MiB``)."""
    if value is None:
        return DASH
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def format_bytes_rate(value: float | None) -> str:
    """Network throughput in decimal units per second (``12.3 MB/s``), as link speeds are quoted."""
    if value is None:
        return DASH
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B/s"


def format_compact(value: int | None) -> str:
    """A large count in four characters or so (``2,340``, ``12.3k``, ``1.0M``, ``9.2E``)."""
    if value is None:
        return DASH
    if value < 10_000:
        return f"{value:,}"
    for unit, scale in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return str(value)


def format_percent(share: float | None) -> str:
    """A share (0.3) as a percentage with one decimal (``30.0%``); a dash when unknown."""
    if share is None:
        return DASH
    return f"{share * 100:.1f}%"
