"""The rollback dialog and the journal's warnings, driven with Pilot on the demo host.

A key changed since the apply is shown as ``900000 (changed since apply) →
65530`` and needs a second Enter (or ``k`` to keep it); an older entry
under a newer one says so and offers ``n``, newest first; an interrupted
apply is announced when the app starts and rolled back from its originals;
another kumotui holding the host's lock is named in the apply dialog.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from textual.widgets import OptionList

from kumotui.settings import Settings
from kumotui.tuning.apply import Outcome, apply_plan
from kumotui.tuning.dropin import dropin_values
from kumotui.tuning.findings import evaluate
from kumotui.tuning.plan import make_plan
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.redirect import Redirect
from kumotui.tuning.target import Target
from kumotui.ui.modals.apply import ApplyScreen
from kumotui.ui.modals.rollback import RollbackScreen
from kumotui.ui.screens.tuning import TuningScreen
from tests.support.demo import make_demo_host
from tests.support.pilot import started
from tests.support.trees import read_tree, snapshot
from tests.support.waits import settle, wait_for
from tests.ui.test_tuning import demo_app, journal_files, tuning


def apply_now(settings: Settings, sets: dict[str, str] | None = None) -> Outcome:
    """Apply the profile (and ``sets``) through the core, with the demo host's clock."""
    target = Target.from_settings(settings)
    profile = load_profile(settings.profile)
    plan = make_plan(profile, evaluate(profile, target.tree), target, sets=sets or {})
    return apply_plan(plan, target)


def text(screen: RollbackScreen | ApplyScreen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_a_changed_key_needs_a_second_confirmation(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    original = snapshot(demo_dir / "proc/sys")
    apply_now(settings)
    (demo_dir / "proc/sys/vm/max_map_count").write_text("900000\n")  # by hand, after the apply
    app = demo_app(settings)
    async with started(app) as pilot:
        await pilot.press("r")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, RollbackScreen) and dialog.stage == "choose"
        await pilot.press("enter")
        await settle(pilot)
        assert dialog.stage == "confirm"
        shown = text(dialog, "#rollback-text")
        line = next(line for line in shown.splitlines() if "vm.max_map_count" in line)
        assert line.split() == ["vm.max_map_count", "900000", "(changed", "since", "apply)", "→", "65530"]
        assert "Enter restores them anyway" in shown
        assert read_tree(demo_dir / "proc/sys", "vm.max_map_count") == "900000"  # nothing written yet
        await pilot.press("enter")
        await settle(pilot)
        assert dialog.stage == "done"
    assert snapshot(demo_dir / "proc/sys") == original
    assert not (demo_dir / "etc/sysctl.d/90-kumomta.conf").exists()


async def test_k_keeps_the_changed_key_at_runtime_and_in_the_drop_in(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    apply_now(settings)
    (demo_dir / "proc/sys/vm/max_map_count").write_text("900000\n")
    app = demo_app(settings)
    async with started(app) as pilot:
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.stage == "confirm"  # type: ignore[attr-defined]
        await pilot.press("k")
        await settle(pilot)
        assert app.screen.stage == "done"  # type: ignore[attr-defined]
    tree = demo_dir / "proc/sys"
    assert read_tree(tree, "vm.max_map_count") == "900000"
    assert read_tree(tree, "net.ipv4.tcp_tw_reuse") == "2"
    dropin = demo_dir / "etc/sysctl.d/90-kumomta.conf"
    assert dropin_values(dropin.read_text(), dropin) == {"vm.max_map_count": "900000"}


async def test_an_older_entry_under_a_newer_one_offers_newest_first(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    original = snapshot(demo_dir / "proc/sys")
    older = apply_now(settings).entry.id
    newer = apply_now(settings, {"vm.max_map_count": "1000000"}).entry.id
    app = demo_app(settings)
    async with started(app) as pilot:
        await pilot.press("r")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, RollbackScreen)
        options = dialog.query_one(OptionList)
        assert options.get_option_at_index(options.highlighted or 0).id == newer
        await pilot.press("down", "enter")
        await settle(pilot)
        assert dialog.stage == "confirm"
        shown = text(dialog, "#rollback-text")
        assert f"Newer applies of these keys are still in place: {newer}" in shown
        assert f"n rolls back {newer}, then {older}" in shown
        await pilot.press("n")
        await settle(pilot)
        assert dialog.stage == "done", text(dialog, "#rollback-text")
    assert snapshot(demo_dir / "proc/sys") == original
    assert not (demo_dir / "etc/sysctl.d/90-kumomta.conf").exists()
    kinds = [json.loads(p.read_text()) for p in journal_files(demo_dir)]
    assert [(e["kind"], e.get("target")) for e in kinds[2:]] == [("rollback", newer), ("rollback", older)]


async def test_an_interrupted_apply_is_announced_and_rolled_back_from_its_originals(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    original = snapshot(demo_dir / "proc/sys")
    outcome = apply_now(settings)
    # As a SIGKILL after the second value leaves it: later values untouched, no drop-in, entry pending.
    (entry_file,) = journal_files(demo_dir)
    entry = json.loads(entry_file.read_text())
    for change in entry["changes"][2:]:
        (demo_dir / "proc/sys" / change["key"].replace(".", "/")).write_text(change["before"] + "\n")
    (demo_dir / "etc/sysctl.d/90-kumomta.conf").unlink()
    entry["status"] = "pending"
    entry_file.write_text(json.dumps(entry))

    app = demo_app(settings)
    async with started(app) as pilot:
        notices = [n for n in app._notifications if n.title == "Interrupted change"]
        assert notices and f"journal entry {outcome.entry.id}" in notices[0].message
        assert f"kumotui rollback {outcome.entry.id}" in notices[0].message
        summary = str(tuning(app).query_one("#plan-summary").render())
        assert "journal needs attention" in summary
        await pilot.press("r")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, RollbackScreen)
        assert "did not finish" in text(dialog, "#rollback-text")
        await pilot.press("enter")
        await settle(pilot)
        assert dialog.stage == "done", text(dialog, "#rollback-text")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TuningScreen)
        await wait_for(pilot, lambda: not tuning(app).notices)
        assert "journal needs attention" not in str(tuning(app).query_one("#plan-summary").render())
    assert snapshot(demo_dir / "proc/sys") == original


HOLDER = """
import sys, time
from pathlib import Path
from kumotui.hosts.local import LocalHost
from kumotui.tuning.lock import hold
with hold(LocalHost(), Path(sys.argv[1]), command="kumotui apply --yes (from another terminal)"):
    print("held", flush=True)
    time.sleep(120)
"""


async def test_apply_while_another_kumotui_holds_the_host_names_it(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    before = snapshot(demo_dir / "proc/sys")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(demo_dir / "var/lib/kumotui")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        app = demo_app(settings)
        async with started(app) as pilot:
            await pilot.press("a")
            await settle(pilot)
            dialog = app.screen
            assert isinstance(dialog, ApplyScreen) and dialog.stage == "preview"
            await pilot.press("enter")
            await wait_for(pilot, lambda: dialog.stage == "done", timeout=20)
            shown = text(dialog, "#apply-text")
            assert f"pid {holder.pid} (kumotui apply --yes (from another terminal))" in shown
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert snapshot(demo_dir / "proc/sys") == before
    assert journal_files(demo_dir) == []


async def test_a_redirect_left_by_a_killed_benchmark_is_announced_at_start(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    state_dir = Target.from_settings(settings).journal.state_dir
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # the benchmark's kumotui, since killed
    gone.wait()
    rule = Redirect("127.0.0.1", 2026, "nft", "127.0.0.1", gone.pid, socket.gethostname())
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state_dir / "redirect.json").write_text(json.dumps(rule.as_json()))

    app = demo_app(settings)
    async with started(app) as pilot:
        await settle(pilot)
        notices = [n.message for n in app._notifications if n.title == "Interrupted change"]
        assert any("a port-25 redirect is still in place" in n for n in notices), notices
        assert any("outbound TCP port 25 -> 127.0.0.1:2026" in n and "kumotui redirect remove" in n for n in notices)
