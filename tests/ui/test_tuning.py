"""The tuning screen driven like an operator would, on a simulated host.

Each test runs the app built by the CLI's own factory (``make_app``) with
Pilot at 80x24 (the SSH case) or 120x36, and asserts on what the core
wrote to the simulated tree and the journal as well as on the screen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select, TextArea

from kumotui.settings import Settings
from kumotui.tuning.privilege import Privilege
from kumotui.tuning.values import Status
from kumotui.ui.app import KumotuiApp, make_app
from kumotui.ui.commands import ScreenCommands
from kumotui.ui.modals.apply import ApplyScreen
from kumotui.ui.modals.edit import EditScreen
from kumotui.ui.modals.export import ExportScreen
from kumotui.ui.modals.profile_picker import ProfileScreen
from kumotui.ui.modals.rollback import RollbackScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.host_header import HostHeader
from kumotui.ui.widgets.param_details import ParamDetails
from kumotui.ui.widgets.param_table import ParamTable
from tests.support.demo import DEMO_FACTS, make_demo_host
from tests.support.exports import ansible_sysctl
from tests.support.pilot import started
from tests.support.trees import COMPLIANT, read_tree
from tests.support.waits import settle

NEEDS_CHANGE = {
    "vm.max_map_count",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "vm.nr_hugepages",
}
"""The kumomta profile's changes on a modern kernel."""


def demo_app(settings: Settings, **kwargs: Any) -> KumotuiApp:
    """The app as the CLI builds it, with the demo host's fixed facts."""
    return make_app(settings, host_facts=DEMO_FACTS, **kwargs)


def tuning(app: KumotuiApp) -> TuningScreen:
    """The tuning screen, wherever the stack is."""
    screen = app.screen_stack[1]
    assert isinstance(screen, TuningScreen)
    return screen


def table(app: KumotuiApp) -> ParamTable:
    """The parameter table."""
    return tuning(app).query_one(ParamTable)


async def highlight(app: KumotuiApp, pilot: Pilot[Any], key: str) -> None:
    """Move the table cursor to ``key`` with the arrow keys."""
    params = table(app)
    target = params.get_row_index(key)
    while params.cursor_row != target:
        await pilot.press("down" if params.cursor_row < target else "up")
    assert params.highlighted is not None and params.highlighted.key == key


def journal_files(base: Path) -> list[Path]:
    """The journal entries the core wrote."""
    directory = base / "var/lib/kumotui/journal"
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


async def test_every_row_visible_at_80x24_problems_first(demo_dir: Path) -> None:
    app = demo_app(make_demo_host(demo_dir))
    async with started(app) as pilot:
        params = table(app)
        rows = params.rows_shown
        assert len(rows) == 12
        assert {r.key for r in rows[:6]} == NEEDS_CHANGE  # problems first
        assert all(r.finding.status is Status.OK for r in rows[6:])
        details = tuning(app).query_one(ParamDetails)
        assert details.display
        # header line + 12 rows, no scrollbar: nothing hides a row
        assert params.size.height >= 13
        assert not params.show_vertical_scrollbar
        assert not params.show_horizontal_scrollbar
        await pilot.press("d")  # at 80x24: the details full-width, in the table's place
        await pilot.pause()
        assert not params.display and details.size.height >= 18 and details.size.width >= 78
        await pilot.press("d")
        await pilot.pause()
        assert params.display and params.size.height >= 13
        header = tuning(app).query_one(HostHeader)
        expected = "root" if os.geteuid() == 0 else "direct"
        assert header.mode == expected and header.profile_name == "kumomta"


async def test_long_values_are_cut_with_an_ellipsis_and_shown_whole_in_details(demo_dir: Path) -> None:
    app = demo_app(make_demo_host(demo_dir))
    async with started(app) as pilot:
        await highlight(app, pilot, "fs.file-max")
        cell = table(app).get_cell("fs.file-max", "current")
        assert str(cell).endswith("…") and "9223372036854775807".startswith(str(cell)[:-1])
        details = tuning(app).query_one(ParamDetails)
        assert details.explanation is not None
        assert "9223372036854775807" in str(details.query_one("#details-text").render())


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
async def test_full_flow_filter_edit_exclude_apply_rollback(demo_dir: Path, size: tuple[int, int]) -> None:
    settings = make_demo_host(demo_dir)
    tree = demo_dir / "proc/sys"

    app = demo_app(settings)
    async with started(app, size) as pilot:
        screen = tuning(app)
        # Filter: only matching keys, Escape brings every row back.
        await pilot.press("slash", *"rmem")
        await pilot.pause()
        assert [r.key for r in table(app).rows_shown] == ["net.core.rmem_max", "net.core.rmem_default"]
        await pilot.press("escape")
        await pilot.pause()
        assert table(app).row_count == 12 and not screen.filter_text

        # Edit: a bad value shows the core's message and keeps the modal open.
        await highlight(app, pilot, "vm.max_map_count")
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, EditScreen)
        app.screen.query_one(Input).value = ""
        await pilot.press(*"12x", "enter")
        await settle(pilot)
        assert isinstance(app.screen, EditScreen)
        message = str(app.screen.query_one("#edit-message").render())
        assert "not valid" in message and "whole number" in message
        # ...a good one closes it and becomes the planned value.
        app.screen.query_one(Input).value = ""
        await pilot.press(*"1000000", "enter")
        await settle(pilot)
        assert isinstance(app.screen, TuningScreen)
        row = table(app).highlighted
        assert row is not None and row.write == "1000000" and row.edited
        assert str(table(app).get_cell("vm.max_map_count", "proposed")) == "✎ 1000000"

        # Exclude: space takes a change out of the plan.
        await highlight(app, pilot, "net.core.rmem_max")
        await pilot.press("space")
        await pilot.pause()
        assert "net.core.rmem_max" in screen.excluded
        assert str(table(app).get_cell("net.core.rmem_max", "proposed")) == "excluded"
        assert len(screen.pending) == 5

        # Apply: the preview shows the core's plan; Enter writes it.
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ApplyScreen) and app.screen.stage == "preview"
        assert app.screen.plan is not None
        assert {c.key for c in app.screen.plan.changes} == NEEDS_CHANGE - {"net.core.rmem_max"}
        preview = str(app.screen.query_one("#apply-text").render())
        assert "etc/sysctl.d/90-kumomta.conf (new file)" in preview
        assert "vm.max_map_count = 1000000" in preview
        # the demo host's /etc/sysctl.conf is read after the drop-in at boot
        assert "etc/sysctl.conf:2 sets 262144" in preview
        assert preview.index("At boot another file wins") < preview.index("Drop-in")
        assert read_tree(tree, "vm.max_map_count") == "65530"  # nothing written before Enter
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.stage == "done"
        result = str(app.screen.query_one("#apply-text").render())
        assert "✔ Done" in result and result.count("read back, as written") == 5
        await pilot.press("enter")
        await settle(pilot)

        assert read_tree(tree, "vm.max_map_count") == "1000000"
        assert read_tree(tree, "net.ipv4.ip_local_port_range") == "5000 63001"
        assert read_tree(tree, "net.core.rmem_max") == "212992"  # excluded
        assert len(journal_files(demo_dir)) == 1
        assert "vm.max_map_count = 1000000" in (demo_dir / "etc/sysctl.d/90-kumomta.conf").read_text()
        # The screen re-read the values: only the excluded key still needs a change.
        assert [r.key for r in table(app).rows_shown if r.finding.status is not Status.OK] == ["net.core.rmem_max"]
        assert screen.excluded == {"net.core.rmem_max"} and not screen.pending

        # Rollback: choose the entry from the journal, Enter restores it.
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, RollbackScreen) and app.screen.stage == "choose"
        assert "Enter restores" in str(app.screen.query_one("#rollback-text").render())
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.stage == "done"
        await pilot.press("escape")
        await settle(pilot)

        assert read_tree(tree, "vm.max_map_count") == "65530"
        assert read_tree(tree, "net.ipv4.ip_local_port_range") == "32768\t60999"
        assert not (demo_dir / "etc/sysctl.d/90-kumomta.conf").exists()
        assert len(journal_files(demo_dir)) == 2
        assert {r.key for r in table(app).rows_shown[:6]} == NEEDS_CHANGE


async def test_read_only_shows_commands_and_writes_nothing(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir, read_only=True)

    app = demo_app(settings)
    async with started(app) as pilot:
        screen = tuning(app)
        assert screen.privilege is Privilege.READ_ONLY
        assert screen.check_action("apply", ()) is False
        assert screen.check_action("rollback", ()) is False
        assert screen.check_action("show_commands", ()) is True
        footer_keys = {b.binding.description for b in screen.active_bindings.values() if b.binding.show}
        assert "Commands" in footer_keys and "Apply" not in footer_keys
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ApplyScreen) and app.screen.stage == "manual"
        commands = app.screen.query_one(TextArea).text
        assert "| sudo tee -- etc/sysctl.d/90-kumomta.conf" in commands
        assert "vm.max_map_count = 768000" in commands
        assert app.screen.query_one(TextArea).read_only
        await pilot.press("escape")
        await settle(pilot)
    assert read_tree(demo_dir / "proc/sys", "vm.max_map_count") == "65530"
    assert not journal_files(demo_dir)
    assert not (demo_dir / "etc/sysctl.d/90-kumomta.conf").exists()


async def test_apply_is_offered_only_with_pending_changes(demo_dir: Path) -> None:
    values = {**COMPLIANT}
    values.pop("kernel.hostname"), values.pop("kernel.osrelease")

    app = demo_app(make_demo_host(demo_dir, values))
    async with started(app) as pilot:
        screen = tuning(app)
        assert not screen.pending
        assert screen.check_action("apply", ()) is False
        titles = [title for title, _, _ in ScreenCommands(screen)._commands()]
        assert "Apply" not in titles and "Rollback" in titles and "Re-read" in titles
        assert "Focus Next" not in titles  # only the screen's own commands
        await pilot.press("a")  # does nothing
        await pilot.pause()
        assert isinstance(app.screen, TuningScreen)


async def test_reread_and_profile_switch(demo_dir: Path) -> None:
    app = demo_app(make_demo_host(demo_dir))
    async with started(app) as pilot:
        (demo_dir / "proc/sys/vm/max_map_count").write_text("800000\n")
        await pilot.press("R")
        await settle(pilot)
        assert table(app).get_cell("vm.max_map_count", "current").plain == "800000"
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, ProfileScreen)
        options = app.screen.query_one(OptionList)
        names = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert names == ["kumomta", "kumomta-extended"]
        options.highlighted = 1
        await pilot.press("enter")
        await settle(pilot)
        assert tuning(app).query_one(HostHeader).profile_name == "kumomta-extended"
        assert table(app).row_count == 20
        rows = table(app).rows_shown
        assert any(r.finding.status is Status.MISSING for r in rows)  # this tree lacks the extras
        assert [r.rank for r in rows] == sorted(r.rank for r in rows)  # changes, then missing, then ok


async def test_a_failed_read_is_a_notice_not_a_traceback(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    settings = Settings(**{**settings.__dict__, "profile": "no-such-profile"})

    app = demo_app(settings)
    async with started(app):
        notices = list(app._notifications)
        assert notices, "expected an error notice"
        assert notices[0].title == "Reading kernel parameters failed"
        assert "no profile of that name" in notices[0].message
        assert app.return_code is None  # still running


async def test_wide_terminal_puts_details_beside_the_table(demo_dir: Path) -> None:
    app = demo_app(make_demo_host(demo_dir))
    async with started(app, (120, 36)) as pilot:
        params = table(app)
        details = tuning(app).query_one(ParamDetails)
        assert details.region.x >= params.region.right - 1
        assert details.region.y == params.region.y
        # Enter on a row edits it too, and Escape leaves the plan alone.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EditScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not tuning(app).edits


async def test_forced_privilege_shows_in_header(demo_dir: Path) -> None:
    app = demo_app(make_demo_host(demo_dir), privilege=Privilege.ROOT)
    async with started(app):
        assert tuning(app).query_one(HostHeader).mode == "root"


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_x_exports_the_plan_with_edits_in_the_chosen_format(demo_dir: Path, size: tuple[int, int]) -> None:
    settings = make_demo_host(demo_dir)
    reports = demo_dir / "var/lib/kumotui/reports"  # the state dir's reports folder, the dialog's default
    app = demo_app(settings)
    async with started(app, size) as pilot:
        screen = tuning(app)
        assert screen.check_action("export", ()) is True
        await highlight(app, pilot, "net.core.rmem_max")
        await pilot.press("space")  # excluded: not in the export either
        await pilot.press("x")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ExportScreen) and dialog.chosen_format == "sysctl-d"
        assert dialog.query_one(Input).value == str(reports / "90-kumomta.conf")
        assert dialog.query_one("#export-dialog").region.right <= size[0]
        dialog.query_one(Select).value = "ansible"
        await pilot.pause()
        assert dialog.query_one(Input).value == str(reports / "kumotui-kumomta.yml")
        dialog.query_one(Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TuningScreen)
        written = ansible_sysctl((reports / "kumotui-kumomta.yml").read_text())
        assert set(written) == NEEDS_CHANGE - {"net.core.rmem_max"}
        assert any(n.title == "Plan exported" and "5 keys, ansible" in n.message for n in app._notifications)
        # TuneD: a profile directory; Escape writes nothing.
        await pilot.press("x")
        await settle(pilot)
        app.screen.query_one(Select).value = "tuned"
        await pilot.pause()
        app.screen.query_one(Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert "[sysctl]\n" in (reports / "kumotui-kumomta" / "tuned.conf").read_text()
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, TuningScreen)
        assert sorted(p.name for p in reports.iterdir() if p.name.startswith(("kumotui-", "90-"))) == [
            "kumotui-kumomta",
            "kumotui-kumomta.yml",
        ]
