"""Help, copy and export as an operator uses them: y copies via OSC 52, j/k move, the export dialog.

Real files throughout: the demo host's saved runs, reports written to disk,
a read-only directory for the bad path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from kumotui.bench.report import reports_dir
from kumotui.hosts.remembered import remember_host
from kumotui.settings import Settings
from kumotui.ui.app import make_app
from kumotui.ui.modals.export import ExportScreen
from kumotui.ui.modals.hosts import HostsScreen
from kumotui.ui.modals.profile_picker import ProfileScreen
from kumotui.ui.screens.runs import RunsScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.param_table import ParamTable
from tests.support.demo import DEMO_FACTS, demo_runs, make_demo_host
from tests.support.waits import settle, wait_for

SIZES = [(80, 24), (120, 36), (60, 20)]


def with_runs(demo_dir: Path) -> Settings:
    """The demo host with its two saved runs."""
    settings = make_demo_host(demo_dir)
    assert settings.state_dir is not None
    demo_runs(demo_dir / settings.state_dir)
    return settings


@pytest.mark.parametrize("size", SIZES)
async def test_y_copies_the_highlighted_value_and_says_what(demo_dir: Path, size: tuple[int, int]) -> None:
    app = make_app(with_runs(demo_dir), host_facts=DEMO_FACTS)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TuningScreen)
        table = screen.query_one(ParamTable)
        await pilot.press("j")  # vi keys move the list
        assert table.cursor_row == 1
        await pilot.press("k")
        assert table.cursor_row == 0
        row = table.highlighted
        assert row is not None
        await pilot.press("y")
        await settle(pilot)
        wanted = row.write or row.finding.current
        assert app.clipboard == wanted
        copied = [n for n in app._notifications if n.title == "Copied"]
        assert copied and row.key in copied[-1].message and str(wanted) in copied[-1].message
        await pilot.press("h")
        await settle(pilot)
        runs = app.screen
        assert isinstance(runs, RunsScreen) and runs.highlighted is not None
        await pilot.press("y")
        await settle(pilot)
        assert app.clipboard == runs.highlighted.id
        assert any(n.title == "Copied" and n.message.startswith("run id") for n in app._notifications)


async def test_copy_goes_to_the_terminal_as_osc_52(demo_dir: Path) -> None:
    app = make_app(with_runs(demo_dir), host_facts=DEMO_FACTS)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        written: list[str] = []
        driver = app._driver
        assert driver is not None
        original = driver.write

        def spy(data: str) -> None:
            written.append(data)
            original(data)

        driver.write = spy  # type: ignore[method-assign]
        await pilot.press("y")
        await settle(pilot)
        assert any("\x1b]52;c;" in chunk for chunk in written)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_export_defaults_to_the_reports_folder_shows_the_path_and_stays_open_on_a_bad_one(
    demo_dir: Path, size: tuple[int, int]
) -> None:
    settings = with_runs(demo_dir)
    assert settings.state_dir is not None
    app = make_app(settings, host_facts=DEMO_FACTS)
    a_file = demo_dir / "notes.txt"
    a_file.write_text("not a directory\n")
    link = demo_dir / "link.md"
    link.symlink_to(a_file)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        runs = app.screen
        assert isinstance(runs, RunsScreen) and runs.highlighted is not None
        run_id = runs.highlighted.id
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen))
        dialog = app.screen
        field = dialog.query_one("#export-path", Input)
        default = reports_dir(settings.state_dir).absolute() / f"kumotui-report-{run_id}.md"
        assert field.value == str(default)
        assert str(default) in str(dialog.query_one("#export-full", Static).render())

        for bad, reason in [
            (a_file / "r.md", "Not a directory"),  # a file where a directory should be
            (demo_dir, "is a directory"),
            (link, "link"),  # never written through
        ]:
            field.value = str(bad)
            field.focus()  # the format list comes first in the dialog
            await pilot.press("enter")
            await wait_for(pilot, lambda: bool(dialog.error))
            assert app.screen is dialog and reason in dialog.error and str(bad) in dialog.error, dialog.error
            assert reason in str(dialog.query_one("#export-error", Static).render())
            dialog.error = ""

        field.value = "~/r.md"  # relative to HOME, shown resolved
        await settle(pilot)
        assert str(Path.home() / "r.md") in str(dialog.query_one("#export-full", Static).render())
        field.value = str(default)
        field.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is runs)
        assert default.read_text().startswith("# kumotui benchmark")
        assert any(n.title == "Report exported" and str(default) in n.message for n in app._notifications)
    assert a_file.read_text() == "not a directory\n"


async def test_j_and_k_move_the_runs_table(demo_dir: Path) -> None:
    app = make_app(with_runs(demo_dir), host_facts=DEMO_FACTS)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        assert table.cursor_row == 0
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("k")
        assert table.cursor_row == 0


@pytest.mark.parametrize("size", SIZES)
async def test_slash_filters_the_runs_the_profiles_and_the_hosts(demo_dir: Path, size: tuple[int, int]) -> None:
    settings = with_runs(demo_dir)
    remember_host("root@mta-02.example.net")
    remember_host("sink-01.example.net:2222")
    app = make_app(settings, host_facts=DEMO_FACTS)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        table = runs.query_one(DataTable)
        assert table.row_count == 2
        newest, second = list(runs.runs)
        cells = [str(c) for c in table.get_row(second)]
        unique = next(c for c in cells if not any(c in str(o) for o in table.get_row(newest)))
        await pilot.press("slash", *unique[:12])  # a cell only the older run has
        await settle(pilot)
        assert table.row_count == 1 and runs.highlighted is not None and runs.highlighted.id == second
        await pilot.press("enter", "y")  # back in the list: y copies the one shown
        assert app.clipboard == second
        await pilot.press("slash")
        await pilot.press("escape")  # every row back
        await settle(pilot)
        assert table.row_count == 2

        await pilot.press("t", "p")  # the profile picker, filtered to one
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen))
        await pilot.press("slash", *"ext", "enter", "enter")
        tuning = app.get_screen_stack("tuning")[-1]
        assert isinstance(tuning, TuningScreen)
        await wait_for(pilot, lambda: tuning.profile_spec == "kumomta-extended")

        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        hosts = app.screen
        await pilot.press("slash", *"sink", "enter")
        await settle(pilot)
        assert hosts.query_one("#hosts-list", DataTable).row_count == 1
        assert hosts.highlighted == "sink-01.example.net:2222"
