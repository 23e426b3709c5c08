"""The guided path end to end on a simulated host with the built-in backend.

Real parts throughout: a simulated /proc/sys tree written and read back, the
journal, a built-in sink and generator as real processes on loopback, a run
record and a Markdown report; every process the guide starts is gone at the end.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import TextArea

from kumotui.hosts import HostFacts
from kumotui.onboarding import guide
from kumotui.tuning.simulate import make_simulated_host
from kumotui.ui.app import GuideMode, make_app
from kumotui.ui.modals.apply import ApplyScreen
from kumotui.ui.screens.guide import GuideScreen
from kumotui.ui.screens.tuning import TuningScreen
from tests.support.processes import alive, free_port
from tests.support.relay import Relay
from tests.support.shots import DEMO_DETECTION
from tests.support.trees import read_tree
from tests.support.waits import settle, wait_for

FACTS = HostFacts("mta-sim", "6.1.0-sim-amd64", 1, 4 * 2**30)
"""One CPU, so the first run's defaults stay small (5,000 messages)."""


@pytest.mark.processes  # the guide starts a built-in sink and runs a benchmark
async def test_guided_path_from_fresh_host_to_first_result(tmp_path: Path) -> None:
    settings = make_simulated_host(tmp_path / "host")
    state_dir = settings.state_dir
    assert state_dir is not None and guide.is_first_run(state_dir)
    app = make_app(settings, host_facts=FACTS)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = GuideScreen(settings, host_facts=FACTS)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: screen.detection is not None, timeout=30)
        text = str(screen.query_one("#guide-text").render())
        assert "Open files (hard)" in text and "Outbound port 25" in text

        await pilot.press("enter")  # detect: done
        assert screen.state.current == "tune"
        await wait_for(pilot, lambda: "need a change" in str(screen.query_one("#guide-text").render()), timeout=30)

        await pilot.press("t")  # to the tuning screen, apply there
        await wait_for(pilot, lambda: isinstance(app.screen, TuningScreen))
        await settle(pilot)  # the values are read
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ApplyScreen) and app.screen.stage == "preview")
        await pilot.press("enter")
        await wait_for(pilot, lambda: read_tree(settings.sysctl_root, "net.ipv4.tcp_tw_reuse") == "1", timeout=30)
        await settle(pilot)
        await pilot.press("escape")
        await app.push_screen(screen := GuideScreen(settings, host_facts=FACTS))  # resumes at step 2
        await settle(pilot)
        assert screen.state.current == "tune"
        await pilot.press("enter")  # tune: done, with what was applied
        assert len(screen.state.applied) == 1

        assert screen.state.current == "sink"
        await pilot.press("enter")  # start the built-in sink
        await wait_for(pilot, lambda: screen.state.current == "bench", timeout=30)
        assert screen.sink is not None and alive(screen.sink.pid)
        sink_pid = screen.sink.pid

        await pilot.press("enter")  # the first benchmark
        await wait_for(pilot, lambda: screen.state.current == "summary", timeout=60)
        assert not alive(sink_pid)
        summary = str(screen.query_one("#guide-text").render())
        assert "net.ipv4.tcp_tw_reuse 2 -> 1" in summary and "MMH" in summary
        # The routing snippet is a code block (never wrapped), with a command for a sink that stays up.
        code = screen.query_one("#guide-code", TextArea)
        assert code.display and "msg:set_meta('queue'" in code.text and not code.soft_wrap
        assert f"`kumotui sink --backend builtin --listen {screen.state.sink_target}`" in summary

        await pilot.press("enter")  # finish
        await wait_for(pilot, lambda: not isinstance(app.screen, GuideScreen))

    state = json.loads((state_dir / "setup.json").read_text())
    assert state["statuses"] == {"detect": "done", "tune": "done", "sink": "done", "bench": "done", "summary": "done"}
    run = json.loads((state_dir / "runs" / f"{state['run_id']}.json").read_text())
    assert run["generator"]["count"] == 5000 and run["sink"]["count"] == 5000
    assert Path(state["report_path"]).read_text().startswith("# ")


async def test_every_step_can_be_skipped_and_the_path_resumes(tmp_path: Path) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=FACTS)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = GuideScreen(settings, host_facts=FACTS)
        await app.push_screen(screen)
        await settle(pilot)
        await pilot.press("s", "s")  # skip detect and tune
        await pilot.press("escape")  # leave
        await wait_for(pilot, lambda: not isinstance(app.screen, GuideScreen))
        again = GuideScreen(settings, host_facts=FACTS)
        await app.push_screen(again)
        await settle(pilot)
        assert again.state.current == "sink"
        await pilot.press("s", "s")
        assert again.state.current == "summary"
        assert "First benchmark: skipped." in str(again.query_one("#guide-text").render())
    assert read_tree(settings.sysctl_root, "net.ipv4.tcp_tw_reuse") == "2"  # nothing was applied


async def test_first_run_opens_the_guide_and_g_reopens_it(tmp_path: Path) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=FACTS, guided=GuideMode.FIRST_RUN)  # what plain `kumotui` does
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, GuideScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, GuideScreen)
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuideScreen)

    quiet = make_app(settings, host_facts=FACTS, guided=GuideMode.FIRST_RUN)
    async with quiet.run_test(size=(80, 24)) as pilot:  # progress exists now: no guide on its own
        await settle(pilot)
        assert not isinstance(quiet.screen, GuideScreen)


@pytest.mark.processes  # a built-in sink, the generator, and a stand-in MTA relaying to the sink
async def test_step_four_measures_the_mta_on_this_host_when_one_answers(tmp_path: Path) -> None:
    """With an MTA detected, m at step 4 sends through it: probes first, then every message accounted for."""
    settings = make_simulated_host(tmp_path / "host")
    sink_port = free_port()
    with Relay(("127.0.0.1", sink_port)) as relay:
        detection = replace(
            DEMO_DETECTION, facts=FACTS, mta="relay.test ESMTP stand-in relay", mta_address=relay.address
        )
        app = make_app(settings, host_facts=FACTS)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = GuideScreen(settings, host_facts=FACTS, detection=detection)
            await app.push_screen(screen)
            await wait_for(pilot, lambda: screen.detection is not None, timeout=30)
            assert f"relay.test ESMTP stand-in relay on {relay.address}" in str(
                screen.query_one("#guide-text").render()
            )
            await pilot.press("enter", "s")  # detect: done; tune: skipped
            assert screen.state.current == "sink"
            screen.query_one("#guide-backend").value = "builtin"
            # The guide's sink listens where the relay delivers (a real operator points the MTA at it).
            monkeypatched = guide.GUIDE_SINK
            guide.GUIDE_SINK = replace(monkeypatched, port=sink_port)
            try:
                await pilot.press("enter")
                await wait_for(pilot, lambda: screen.state.current == "bench", timeout=30)
            finally:
                guide.GUIDE_SINK = monkeypatched
            text = str(screen.query_one("#guide-text").render())
            assert f"An MTA answers on {relay.address}" in text and "m measures it instead" in text
            await pilot.press("m")
            try:
                await wait_for(pilot, lambda: screen.state.current == "summary", timeout=90)
            except TimeoutError:
                raise AssertionError([n.message for n in app._notifications], screen.busy, relay.accepted) from None
        assert relay.accepted == 5000 + 3  # the first run's 5,000 messages and the 3 probes
    state = json.loads((settings.state_dir / "setup.json").read_text())  # type: ignore[operator]
    run = json.loads((settings.state_dir / "runs" / f"{state['run_id']}.json").read_text())  # type: ignore[operator]
    assert run["config"]["through"] == relay.address
    assert (run["delivery"]["injected"], run["delivery"]["delivered"], run["delivery"]["lost"]) == (5000, 5000, 0)
