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

from kumotui.hosts.remembered import remember_host
from kumotui.onboarding import guide
from kumotui.onboarding.detect import Port25
from kumotui.settings import Settings
from kumotui.tuning.privilege import Privilege
from kumotui.ui.app import KumotuiApp, make_app
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.guide import GuideScreen
from tests.support.demo import (
    DEMO_FACTS,
    DEMO_LIVE_TICK,
    DEMO_MESSAGES,
    demo_runs,
    demo_source,
    demo_ticks,
    frozen_clock,
    make_demo_host,
    settle,
    wait_for,
)

DEMO_DETECTION = guide.Detection(
    facts=DEMO_FACTS,
    kumomta_sbin=None,
    kumomta_version=None,
    postfix_tools=False,
    privilege="root",
    nofile_hard=524288,
    nofile_source="this account (getrlimit)",
    port25=Port25(False, "no rule in nftables or iptables drops outbound TCP port 25"),
)
"""A fresh Debian server as step 1 sees it."""

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


def bench_screen(pilot: Pilot[Any]) -> BenchScreen:
    """The benchmark screen (the current one)."""
    screen = pilot.app.screen
    assert isinstance(screen, BenchScreen)
    return screen


async def show_bench_form(pilot: Pilot[Any]) -> None:
    """The benchmark screen as it opens: the form with its defaults."""
    await settle(pilot)
    await pilot.press("b")
    await settle(pilot)


async def start_demo_run(pilot: Pilot[Any]) -> BenchScreen:
    """Fill the form for the scripted run and press s."""
    await show_bench_form(pilot)
    screen = bench_screen(pilot)
    screen.query_one("#messages", Input).value = str(DEMO_MESSAGES)
    await pilot.press("s")
    return screen


async def show_bench_live(pilot: Pilot[Any]) -> None:
    """A run in progress: progress, rates, latency, the host, two hints."""
    screen = await start_demo_run(pilot)
    held = demo_ticks()[DEMO_LIVE_TICK - 1][0].elapsed
    await wait_for(pilot, lambda: screen.figures is not None and screen.figures.elapsed >= held)


async def show_bench_live_log(pilot: Pilot[Any]) -> None:
    """A run in progress with the job log shown."""
    await show_bench_live(pilot)
    await pilot.press("l")
    await pilot.pause()


async def show_bench_done(pilot: Pilot[Any]) -> None:
    """A finished run: the summary card beside KumoMTA's published figures."""
    screen = await start_demo_run(pilot)
    await wait_for(pilot, lambda: screen.state == "done")
    await settle(pilot)
    # The card appears by a class change; make sure the layout pass that places
    # it below the form has run before the picture is taken.
    summary, form = screen.query_one("#bench-summary"), screen.query_one("#bench-form")
    screen.refresh(layout=True)
    await wait_for(pilot, lambda: not summary.region.overlaps(form.region))
    await settle(pilot)


async def show_runs_compare(pilot: Pilot[Any]) -> None:
    """Two saved runs (before and after tuning) side by side."""
    await settle(pilot)
    await pilot.press("h")
    await settle(pilot)
    await pilot.press("space", "down", "space")
    await settle(pilot)


async def show_guide_detect(pilot: Pilot[Any]) -> None:
    """The guided setup's first step: what kumotui found on this host."""
    await settle(pilot)
    await pilot.app.push_screen(GuideScreen(demo_settings(pilot), host_facts=DEMO_FACTS, detection=DEMO_DETECTION))
    await settle(pilot)


async def show_guide_summary(pilot: Pilot[Any]) -> None:
    """The guided setup's last step: what changed, the result, next steps, the routing snippet."""
    await settle(pilot)
    settings = demo_settings(pilot)
    assert settings.state_dir is not None
    run = demo_runs(settings.state_dir)[-1]
    state = guide.GuideState(
        started=run.started,
        sink_target="127.0.0.1:2026",
        sink_backend="builtin",
        run_id=run.id,
        report_path=f"{settings.state_dir}/reports/{run.id}.md",
    )
    for step in guide.STEPS[:-1]:
        state = state.mark(step, "done")
    guide.save_state(settings.state_dir, state)
    await pilot.app.push_screen(GuideScreen(settings, host_facts=DEMO_FACTS, detection=DEMO_DETECTION))
    await settle(pilot)


async def show_hosts(pilot: Pilot[Any]) -> None:
    """The host switcher with two remembered hosts."""
    await settle(pilot)
    for host in ("root@mta-02.example.net", "sink-01.example.net:2222"):
        remember_host(host)
    await pilot.press("H")
    await settle(pilot)


def demo_settings(pilot: Pilot[Any]) -> Settings:
    """The settings the demo app was built with."""
    app = pilot.app
    assert isinstance(app, KumotuiApp)
    return app.settings


@dataclass(frozen=True)
class Shot:
    """One screenshot: a state, a terminal size, and how the app is built."""

    name: str
    drive: Drive
    size: tuple[int, int] = (80, 24)
    read_only: bool = False
    hold_at: int | None = None
    """The scripted benchmark holds after this many readings (a run in progress)."""
    runs: bool = False
    """Save the demo's two runs first."""


SHOTS = (
    Shot("tuning-80x24", show_tuning),
    Shot("tuning-120x36", show_tuning, (120, 36)),
    Shot("edit-80x24", show_edit),
    Shot("apply-preview-80x24", show_apply_preview),
    Shot("apply-preview-120x36", show_apply_preview, (120, 36)),
    Shot("apply-done-80x24", show_apply_done),
    Shot("read-only-commands-80x24", show_read_only, read_only=True),
    Shot("bench-form-80x24", show_bench_form),
    Shot("bench-live-80x24", show_bench_live, hold_at=DEMO_LIVE_TICK),
    Shot("bench-live-120x36", show_bench_live_log, (120, 36), hold_at=DEMO_LIVE_TICK),
    Shot("bench-done-80x24", show_bench_done),
    Shot("bench-done-120x36", show_bench_done, (120, 36)),
    Shot("runs-compare-80x24", show_runs_compare, runs=True),
    Shot("runs-compare-120x36", show_runs_compare, (120, 36), runs=True),
    Shot("guide-detect-80x24", show_guide_detect),
    Shot("guide-summary-80x24", show_guide_summary),
    Shot("hosts-80x24", show_hosts),
)
"""Every screenshot the script writes."""


def demo_app(base: Path, *, read_only: bool = False, hold_at: int | None = None, runs: bool = False) -> KumotuiApp:
    """The app on the demo host under ``base`` (which must be the working directory).

    Its benchmark screen plays the demo's scripted run (holding after
    ``hold_at`` readings when given); with ``runs`` the two demo runs are saved first.
    """
    settings = make_demo_host(base, read_only=read_only)
    if runs and settings.state_dir is not None:
        demo_runs(base / settings.state_dir)
    privilege = Privilege.READ_ONLY if read_only else Privilege.ROOT
    return make_app(settings, host_facts=DEMO_FACTS, privilege=privilege, bench_source=demo_source(hold_at))


def shot_app(base: Path, shot: Shot) -> KumotuiApp:
    """The app a shot starts from."""
    return demo_app(base, read_only=shot.read_only, hold_at=shot.hold_at, runs=shot.runs)


async def capture(shot: Shot) -> str:
    """Run one shot on a fresh demo host and return its SVG."""
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="kumotui-shot-") as tmp:
        os.chdir(tmp)
        os.environ["KUMOTUI_CONFIG_DIR"] = str(Path(tmp) / "config")  # remembered hosts stay in the shot
        try:
            with frozen_clock():
                app = shot_app(Path(tmp), shot)
                async with app.run_test(size=shot.size) as pilot:
                    await shot.drive(pilot)
                    await pilot.wait_for_scheduled_animations()
                    await pilot.pause()
                    return app.export_screenshot(title=f"kumotui · {shot.name}")
        finally:
            os.chdir(cwd)


def main(argv: list[str] | None = None) -> int:
    """Write every screenshot (or those named after ``DIR``) into ``DIR`` (default ``screenshots/``)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    only = set(args[1:])
    for shot in SHOTS:
        if only and shot.name not in only:
            continue
        path = out / f"{shot.name}.svg"
        path.write_text(asyncio.run(capture(shot)), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
