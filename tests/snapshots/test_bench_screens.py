"""SVG snapshots of the benchmark and runs screens' main states.

The states are the screenshot script's own (``kumotui.ui.screenshots``), on
the demo host with its scripted run, so the committed screenshots and these
snapshots show the same screens. Update after an intended change with
``pytest --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scripts import screenshots
from tests.support.demo import frozen_clock

SnapCompare = Callable[..., bool]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run inside the demo host's directory, so paths read ``var/lib/kumotui/...``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "shot",
    [shot for shot in screenshots.SHOTS if shot.name in {"bench-live-80x24", "bench-done-80x24", "runs-compare-80x24"}],
    ids=lambda shot: shot.name,
)
def test_bench_states(shot: screenshots.Shot, demo: Path, snap_compare: SnapCompare) -> None:
    with frozen_clock():
        app = screenshots.shot_app(demo, shot)
        assert snap_compare(app, terminal_size=shot.size, run_before=shot.drive)
