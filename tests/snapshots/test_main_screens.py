"""SVG snapshots of the tuning screen's main states, on the deterministic demo host.

The states are the screenshot script's own (:mod:`tests.support.shots`), so
the committed screenshots and these snapshots show the same screens.
Update after an intended change with ``pytest tests/snapshots --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import shots

SnapCompare = Callable[..., bool]

MAIN = {"tuning-80x24", "tuning-120x36", "edit-80x24", "apply-preview-80x24", "read-only-commands-80x24"}


@pytest.mark.parametrize("shot", [shot for shot in shots.SHOTS if shot.name in MAIN], ids=lambda shot: shot.name)
def test_main_states(shot: shots.Shot, demo_dir: Path, snap_compare: SnapCompare) -> None:
    app = shots.shot_app(demo_dir, shot)
    assert snap_compare(app, terminal_size=shot.size, run_before=shot.drive)
