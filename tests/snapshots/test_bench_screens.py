"""SVG snapshots of the benchmark and runs screens' main states.

The states are the screenshot script's own (:mod:`tests.support.shots`), on
the demo host with its scripted run, played reading by reading, so the
committed screenshots and these snapshots show the same screens.
Update after an intended change with ``pytest tests/snapshots --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import shots

SnapCompare = Callable[..., bool]

BENCH = {"bench-live-80x24", "bench-live-120x36", "bench-done-80x24", "runs-compare-80x24"}


@pytest.mark.parametrize("shot", [shot for shot in shots.SHOTS if shot.name in BENCH], ids=lambda shot: shot.name)
def test_bench_states(shot: shots.Shot, demo_dir: Path, snap_compare: SnapCompare) -> None:
    app = shots.shot_app(demo_dir, shot)
    assert snap_compare(app, terminal_size=shot.size, run_before=shot.drive)
