"""The one set of formatters: every face shows a figure the same way."""

from __future__ import annotations

import pytest

from kumotui.text.format import (
    DASH,
    format_bytes,
    format_bytes_rate,
    format_compact,
    format_count,
    format_eta,
    format_mb_rate,
    format_mmh,
    format_ms,
    format_rate,
    format_seconds,
    format_size,
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0004, "0"),
        (0.412, "0.412"),
        (3.021, "3.02"),
        (41.23, "41.2"),
        (99.94, "99.9"),
        (99.96, "100"),
        (999.6, "1,000"),
        (1204.4, "1,204"),
    ],
)
def test_milliseconds(value: float, shown: str) -> None:
    assert format_ms(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"), [(4.0341, "4.034"), (41.184, "41.18"), (283.09, "283.1"), (1234.5, "1,234.5")]
)
def test_mmh_keeps_the_published_precision_for_published_sizes(value: float, shown: str) -> None:
    assert format_mmh(value) == shown


def test_the_rest() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_rate(11439.4) == "11,439" and format_rate(42.25) == "42.2"
    assert format_seconds(20.04) == "20.0 s"
    assert format_eta(7.2) == "0:08" and format_eta(3723) == "1:02:03"
    assert format_size(100_000) == "100 KB" and format_size(1_500_000) == "1.5 MB" and format_size(512) == "512 B"
    assert format_bytes(16 * 2**30) == "16.0 GiB" and format_bytes(512 * 2**20) == "512.0 MiB"
    assert format_bytes_rate(1.2e9) == "1.2 GB/s" and format_mb_rate(12.34) == "12.3"
    assert format_compact(9_223_372_036_854_775_807) == "9.2E" and format_compact(2340) == "2,340"


def test_unknown_is_a_dash_everywhere() -> None:
    for formatter in (format_count, format_rate, format_mmh, format_ms, format_seconds, format_eta, format_bytes):
        assert formatter(None) == DASH
