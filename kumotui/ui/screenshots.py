"""Write SVG screenshots of the app's main states to ``screenshots/``.

Run ``python -m kumotui.ui.screenshots [DIR]``. Every screenshot comes from
the same factory as the CLI (:func:`kumotui.ui.app.make_app`) on the
deterministic simulated host of :mod:`kumotui.ui.demo`, so two runs write
identical files and a changed file is a changed screen. The snapshot tests
drive the app into the same states with the functions below.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from kumotui.privilege import Privilege
from kumotui.ui.app import KumotuiApp, make_app
from kumotui.ui.demo import DEMO_FACTS, frozen_clock, make_demo_host, settle

Drive = Callable[[Pilot[Any]], Awaitable[None]]


async def show_tuning(pilot: Pilot[Any]) -> None:
    """The tuning screen as it opens: problems first, the first one explained."""
    await settle(pilot)


async def show_edit(pilot: Pilot[Any]) -> None:
    """The edit modal after a bad value: the core's message under the input."""
    await settle(pilot)
    await pilot.press("e")
    await settle(pilot)
    field = pilot.app.screen.query_one(Input)
    field.cursor_blink = False
    field.value = ""
    await pilot.press(*"70000O", "enter")  # a letter O where a zero belongs
    await settle(pilot)


async def show_apply_preview(pilot: Pilot[Any]) -> None:
    """The apply preview: runtime changes, the drop-in as written, warnings."""
    await settle(pilot)
    await pilot.press("a")
    await settle(pilot)


async def show_apply_done(pilot: Pilot[Any]) -> None:
    """After Enter in the preview: each key's read-back result."""
    await show_apply_preview(pilot)
    await pilot.press("enter")
    await settle(pilot)


async def show_read_only(pilot: Pilot[Any]) -> None:
    """Read-only: the commands and file content to run by hand."""
    await settle(pilot)
    await pilot.press("a")
    await settle(pilot)


@dataclass(frozen=True)
class Shot:
    """One screenshot: a state, a terminal size, and how the app is built."""

    name: str
    drive: Drive
    size: tuple[int, int] = (80, 24)
    read_only: bool = False


SHOTS = (
    Shot("tuning-80x24", show_tuning),
    Shot("tuning-120x36", show_tuning, (120, 36)),
    Shot("edit-80x24", show_edit),
    Shot("apply-preview-80x24", show_apply_preview),
    Shot("apply-preview-120x36", show_apply_preview, (120, 36)),
    Shot("apply-done-80x24", show_apply_done),
    Shot("read-only-commands-80x24", show_read_only, read_only=True),
)
"""Every screenshot the script writes."""


def demo_app(base: Path, *, read_only: bool = False) -> KumotuiApp:
    """The app on the demo host under ``base`` (which must be the working directory)."""
    settings = make_demo_host(base, read_only=read_only)
    privilege = Privilege.READ_ONLY if read_only else Privilege.ROOT
    return make_app(settings, host_facts=DEMO_FACTS, privilege=privilege)


async def capture(shot: Shot) -> str:
    """Run one shot on a fresh demo host and return its SVG."""
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="kumotui-shot-") as tmp:
        os.chdir(tmp)
        try:
            with frozen_clock():
                app = demo_app(Path(tmp), read_only=shot.read_only)
                async with app.run_test(size=shot.size) as pilot:
                    await shot.drive(pilot)
                    await pilot.wait_for_scheduled_animations()
                    await pilot.pause()
                    return app.export_screenshot(title=f"kumotui · {shot.name}")
        finally:
            os.chdir(cwd)


def main(argv: list[str] | None = None) -> int:
    """Write every screenshot into ``DIR`` (default ``screenshots/``)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    for shot in SHOTS:
        path = out / f"{shot.name}.svg"
        path.write_text(asyncio.run(capture(shot)), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
