"""No dead ends: the guide's keys, navigation through the palette, quitting, and a host that does not answer.

Each test drives the app as the CLI builds it on a simulated host, at the
sizes operators use (80x24 over SSH, 120x36, 60x20).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette

from kumotui.hosts.remembered import remember_host
from kumotui.tuning.simulate import make_simulated_host
from kumotui.ui.app import GuideMode, make_app
from kumotui.ui.help import HelpScreen
from kumotui.ui.modals.hosts import HostsScreen
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.guide import GuideScreen
from kumotui.ui.screens.runs import RunsScreen
from kumotui.ui.screens.tuning import TuningScreen
from tests.support.demo import DEMO_FACTS
from tests.support.processes import children
from tests.support.waits import settle, wait_for

SIZES = [(80, 24), (120, 36), (60, 20)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("away", ["h", "b"])
async def test_leaving_the_first_run_guide_and_coming_back_with_g_shows_the_same_guide(
    tmp_path: Path, size: tuple[int, int], away: str
) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=DEMO_FACTS, guided=GuideMode.FIRST_RUN)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        guide = app.screen
        assert isinstance(guide, GuideScreen)
        await pilot.press(away)
        await wait_for(pilot, lambda: isinstance(app.screen, (BenchScreen, RunsScreen)))
        await pilot.press("g")
        await wait_for(pilot, lambda: app.screen is guide)
        await pilot.press("g")  # again, from the guide itself: nothing happens, nothing breaks
        await settle(pilot)
        assert app.screen is guide
        assert [s for s in app.get_screen_stack("tuning") if isinstance(s, GuideScreen)] == [guide]
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("size", SIZES)
async def test_on_the_guide_q_t_and_H_work_at_step_one(tmp_path: Path, size: tuple[int, int]) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=DEMO_FACTS, guided=GuideMode.ALWAYS)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, GuideScreen) and app.screen.state.current == "detect"
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, GuideScreen))
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TuningScreen))
        await pilot.press("g")  # resumes at step 1
        await wait_for(pilot, lambda: isinstance(app.screen, GuideScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def palette_titles(pilot, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Open the palette, type ``query``, return the titles offered."""
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
    await pilot.press(*query)
    await settle(pilot)
    await pilot.pause(0.3)  # the palette searches in a worker, debounced
    await settle(pilot)
    options = pilot.app.screen.query_one(CommandList)
    titles = [str(options.get_option_at_index(i).prompt).split("\n")[0] for i in range(options.option_count)]
    await pilot.press("escape")
    await wait_for(pilot, lambda: not isinstance(pilot.app.screen, CommandPalette))
    return titles


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_the_palette_reaches_every_screen_and_lists_quit_once(tmp_path: Path, size: tuple[int, int]) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=DEMO_FACTS)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for query, title in [("bench", "Bench"), ("runs", "Runs"), ("guide", "Setup"), ("hosts", "Hosts")]:
            assert title in await palette_titles(pilot, query), query
        assert (await palette_titles(pilot, "quit")).count("Quit") == 1
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BenchScreen))
        assert "Tuning" in await palette_titles(pilot, "tuning")
        # Choosing a palette entry navigates.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"runs", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("g")  # the guide from another mode, then its palette: it has one too
        await wait_for(pilot, lambda: isinstance(app.screen, GuideScreen))
        assert "Skip" in await palette_titles(pilot, "skip")


@pytest.mark.parametrize("size", SIZES)
async def test_question_mark_explains_each_screen(tmp_path: Path, size: tuple[int, int]) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=DEMO_FACTS)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for key, expected in [("t", "Proposed: what apply would write"), ("b", "MMH: millions"), ("h", "space picks")]:
            await pilot.press(key)
            await settle(pilot)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = app.screen.text.plain
            assert expected in text and "Keys here" in text and "ctrl+p" in text
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))


def no_answer_listener() -> socket.socket:
    """A loopback TCP port that accepts connections (the kernel's backlog) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def closed_port() -> int:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_switching_to_an_unreachable_host_fails_fast_and_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("KUMOTUI_SSH_TIMEOUT", "3")
    listener = no_answer_listener() if kind == "silent" else None
    port = listener.getsockname()[1] if listener else closed_port()
    dead = f"127.0.0.1:{port}"
    remember_host(dead)
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=DEMO_FACTS)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            tuning = app.screen
            assert isinstance(tuning, TuningScreen)
            await pilot.press("p")  # choose another profile first: the switch must keep it
            await settle(pilot)
            await pilot.press("down", "enter")
            await wait_for(pilot, lambda: tuning.profile_spec == "kumomta-extended", 10)
            before = set(children(os.getpid()))
            await pilot.press("H")
            await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
            await pilot.press("down", "enter")  # the remembered, dead host
            started = time.monotonic()
            await wait_for(pilot, lambda: not app.switching, 15)
            took = time.monotonic() - started
            assert took < 6, took  # bounded by the SSH deadline (3 s here), not forever
            await settle(pilot)
            assert app.screen is tuning and app.settings.hosts == ()  # still on this machine
            assert tuning.profile_spec == "kumomta-extended"
            assert "Reading" not in str(tuning.query_one("#plan-summary").render())
            said = [n for n in app._notifications if n.title == f"Cannot switch to {dead}"]
            assert said and "Still on local" in said[0].message and dead.split(":")[0] in said[0].message
            left = set(children(os.getpid())) - before
            assert not left, f"processes left behind: {left}"
            await pilot.press("H")  # the dead host is not marked current
            await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
            listing = app.screen.query_one("#hosts-list")
            assert "(current)" in str(listing.get_row_at(0)[0]) and "(current)" not in str(listing.get_row_at(1)[0])
    finally:
        if listener is not None:
            listener.close()
