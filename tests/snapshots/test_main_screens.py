"""SVG snapshots of the main states, on the deterministic demo host.

The states are the screenshot script's own (``kumotui.ui.screenshots``), so
the committed screenshots and these snapshots show the same screens.
Update after an intended change with ``pytest --snapshot-update``.
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
    """Run inside the demo host's directory, so paths read ``etc/sysctl.d/...``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "shot",
    [
        shot
        for shot in screenshots.SHOTS
        if shot.name
        in {"tuning-80x24", "tuning-120x36", "edit-80x24", "apply-preview-80x24", "read-only-commands-80x24"}
    ],
    ids=lambda shot: shot.name,
)
def test_main_states(shot: screenshots.Shot, demo: Path, snap_compare: SnapCompare) -> None:
    with frozen_clock():
        app = screenshots.demo_app(demo, read_only=shot.read_only)
        assert snap_compare(app, terminal_size=shot.size, run_before=shot.drive)
