"""Clock offsets between hosts: the estimate from timed exchanges, and what delivery latency does with it."""

from __future__ import annotations

import pytest

from kumotui.backends.process import ClockOffset
from kumotui.bench.delivery import SAME_HOST, compare_clocks

MS = 1_000_000


def test_the_shortest_round_trip_gives_the_offset() -> None:
    # The remote clock is 250 ms ahead. Two exchanges were slow on one leg only (queueing), which skews
    # their midpoint; the fast one (2 ms round trip, symmetric) is the one to trust.
    exchanges = [
        (0, 250 * MS + 40 * MS, 42 * MS),  # slow outbound leg
        (100 * MS, 351 * MS, 102 * MS),  # 2 ms round trip
        (200 * MS, 451 * MS, 260 * MS),  # slow return leg
    ]
    offset = ClockOffset.estimate(exchanges)
    assert offset.seconds == pytest.approx(0.250)
    assert offset.uncertainty == pytest.approx(0.001)


def test_one_generator_host_has_its_offset_taken_out_of_the_latency() -> None:
    clocks = compare_clocks(("mx2", 0.300, 0.002), [("gen-a", 0.050, 0.001)])
    assert clocks.offset_ms == pytest.approx(250.0) and clocks.uncertainty_ms == pytest.approx(3.0)
    assert clocks.text.startswith("different hosts: the sink's clock (mx2) is +250.0 ms ± 3.0 ms")
    assert clocks.corrected({"p50": 300.0, "max": 900.0, "p99": 100.0}) == {"p50": 50.0, "max": 650.0, "p99": 0.0}


def test_several_generator_hosts_are_said_not_corrected() -> None:
    clocks = compare_clocks(("local", 0.0, 0.0), [("a", 0.010, 0.001), ("b", -0.020, 0.001)])
    assert clocks.offset_ms is None and clocks.corrected({"p50": 5.0}) == {"p50": 5.0}
    assert "-10.0 to +20.0 ms" in clocks.text and "not taken out" in clocks.text


def test_an_offset_that_could_not_be_measured_says_why() -> None:
    clocks = compare_clocks(None, [], error="gen-a: the SSH connection was lost")
    assert clocks.offset_ms is None
    assert clocks.text.endswith("(not measured: gen-a: the SSH connection was lost)")
    assert SAME_HOST.corrected({"p50": 1.5}) == {"p50": 1.5} and SAME_HOST.text == "same host: one clock"
