"""The app's main states, for the README screenshots and the SVG snapshot tests alike.

``scripts/screenshots.py`` writes one SVG per :data:`SHOTS` entry and the
tests in ``tests/snapshots/`` compare the same states with their stored
snapshots, so screenshots and snapshots cannot drift apart. Every state is
built by the CLI's own factory (:func:`kumotui.ui.app.make_app`) on the
deterministic demo host of :mod:`tests.support.demo`, and reached by
waiting on state the app sets (workers done, a run's readings shown, the
summary card laid out), never on wall-clock time or geometry, so two runs
give identical pictures and a changed picture is a changed screen.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Log

from kumotui.hosts.remembered import remember_host
from kumotui.onboarding import guide
from kumotui.onboarding.detect import Port25
from kumotui.settings import Settings
from kumotui.tuning.privilege import Privilege
from kumotui.ui.app import KumotuiApp, make_app
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.guide import GuideScreen
from kumotui.ui.widgets.bench_panes import HintList
from tests.support.demo import (
    DEMO_FACTS,
    DEMO_LIVE_TICK,
    DEMO_MESSAGES,
    ScriptedBenchmark,
    demo_runs,
    demo_source,
    make_demo_host,
)
from tests.support.waits import settle, wait_for

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


async def show_readings(
    pilot: Pilot[Any], screen: BenchScreen, count: int | None = None, until: Callable[[], object] | None = None
) -> None:
    """Let a paced scripted run's readings through one at a time, each shown before the next goes:
    ``count`` of them (all when None), or until ``until()`` holds.

    Played at full speed, the screen would see an arbitrary subset (a newer
    reading replaces a queued older one), and what it keeps from earlier
    readings, such as which hint is highlighted, would change from run to run.
    A real run's readings come half a second apart, so it shows each one.
    """
    await wait_for(pilot, lambda: isinstance(screen.bench, ScriptedBenchmark))
    bench = screen.bench
    assert isinstance(bench, ScriptedBenchmark) and bench.paced
    for tick in bench.ticks[:count]:
        if until is not None and until():
            return
        bench.release()
        elapsed = tick[0].elapsed
        await wait_for(pilot, lambda elapsed=elapsed: screen.figures is not None and screen.figures.elapsed >= elapsed)
    assert until is None or until(), "the scripted run ended first"


async def play_demo_run(pilot: Pilot[Any], readings: int | None = None) -> BenchScreen:
    """Start the scripted run from the form and show ``readings`` of its readings (all when None)."""
    await show_bench_form(pilot)
    screen = bench_screen(pilot)
    screen.query_one("#messages", Input).value = str(DEMO_MESSAGES)
    await pilot.press("s")
    await show_readings(pilot, screen, readings)
    return screen


async def look_at_first_hint(pilot: Pilot[Any], screen: BenchScreen) -> None:
    """Home in the hint list: the warning on top is highlighted (the highlight stays where it was when
    a warning arrives above a note, so without this it would be on the CPU note that came first)."""
    hints = screen.query_one(HintList)
    assert hints.has_focus, screen.focused
    await pilot.press("home")
    assert hints.highlighted == 0


async def show_bench_live(pilot: Pilot[Any]) -> None:
    """A run in progress: progress, rates, latency, the host, two hints (the warning highlighted)."""
    screen = await play_demo_run(pilot, DEMO_LIVE_TICK)
    await look_at_first_hint(pilot, screen)


async def show_bench_live_log(pilot: Pilot[Any]) -> None:
    """A run in progress with the job log shown."""
    await show_bench_live(pilot)
    screen = bench_screen(pilot)
    log = screen.query_one(Log)
    await pilot.press("l")
    await wait_for(pilot, lambda: log.display and log.line_count > 0)


async def show_bench_done(pilot: Pilot[Any]) -> None:
    """A finished run: the summary card beside KumoMTA's published figures."""
    screen = await play_demo_run(pilot)
    # The screen says when the card is shown and laid out (after its refresh).
    await wait_for(pilot, lambda: screen.summary_shown)
    await settle(pilot)
    await look_at_first_hint(pilot, screen)


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
    Shot("bench-live-80x24", show_bench_live),
    Shot("bench-live-120x36", show_bench_live, (120, 36)),
    Shot("bench-log-120x36", show_bench_live_log, (120, 36)),
    Shot("bench-done-80x24", show_bench_done),
    Shot("bench-done-120x36", show_bench_done, (120, 36)),
    Shot("runs-compare-80x24", show_runs_compare, runs=True),
    Shot("runs-compare-120x36", show_runs_compare, (120, 36), runs=True),
    Shot("guide-detect-80x24", show_guide_detect),
    Shot("guide-summary-80x24", show_guide_summary),
    Shot("hosts-80x24", show_hosts),
)
"""Every screenshot the script writes; the snapshot tests compare a selection."""


def demo_app(base: Path, *, read_only: bool = False, runs: bool = False) -> KumotuiApp:
    """The app on the demo host under ``base`` (which must be the working directory).

    Its benchmark screen plays the demo's scripted run, paced by the shot
    (:func:`play_demo_run`); with ``runs`` the two demo runs are saved first.
    """
    settings = make_demo_host(base, read_only=read_only)
    if runs and settings.state_dir is not None:
        demo_runs(base / settings.state_dir)
    privilege = Privilege.READ_ONLY if read_only else Privilege.ROOT
    return make_app(settings, host_facts=DEMO_FACTS, privilege=privilege, bench_source=demo_source(paced=True))


def shot_app(base: Path, shot: Shot) -> KumotuiApp:
    """The app a shot starts from."""
    return demo_app(base, read_only=shot.read_only, runs=shot.runs)


async def capture(shot: Shot) -> str:
    """Run one shot on a fresh demo host and return its SVG (the screenshot script's way)."""
    cwd = Path.cwd()
    config = os.environ.get("KUMOTUI_CONFIG_DIR")
    with tempfile.TemporaryDirectory(prefix="kumotui-shot-") as tmp:
        os.chdir(tmp)
        os.environ["KUMOTUI_CONFIG_DIR"] = str(Path(tmp) / "config")  # remembered hosts stay in the shot
        try:
            app = shot_app(Path(tmp), shot)
            async with app.run_test(size=shot.size) as pilot:
                await shot.drive(pilot)
                await pilot.wait_for_scheduled_animations()
                await pilot.pause()
                return app.export_screenshot(title=f"kumotui · {shot.name}")
        finally:
            os.chdir(cwd)
            if config is None:
                os.environ.pop("KUMOTUI_CONFIG_DIR", None)
            else:
                os.environ["KUMOTUI_CONFIG_DIR"] = config
