"""Honest, readable tuning at real sizes: modes said as modes, vectors that show their difference,
details reachable at 80x24, host comparisons that mark a cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from kumotui.hosts.remembered import remember_host
from kumotui.tuning.simulate import make_simulated_host
from kumotui.ui.app import make_app
from kumotui.ui.modals.apply import ApplyScreen
from kumotui.ui.modals.hosts import HostsScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.param_details import ParamDetails
from kumotui.ui.widgets.param_table import ParamTable, field_segments, fit_fields
from tests.support.demo import DEMO_FACTS, make_demo_host
from tests.support.waits import settle, wait_for


def test_fit_fields_keeps_the_differing_field_and_marks_the_cut() -> None:
    segments = field_segments("4096 131072 6291456", "4096 131072 16777216")
    assert segments == [("4096", False), ("131072", False), ("6291456", True)]
    assert fit_fields(segments, 11) == [("…", False), ("6291456", True)]
    assert fit_fields(segments, 40) == segments
    middle = field_segments("4096 87380 6291456", "4096 131072 6291456")
    assert fit_fields(middle, 11) == [("…", False), ("87380", True), ("…", False)]
    assert fit_fields(field_segments("1 2", "3"), 2) == [("1…", False)]


async def open_extended(app: object, pilot: object) -> TuningScreen:  # type: ignore[no-untyped-def]
    """Switch the demo host's tuning screen to kumomta-extended."""
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, TuningScreen)
    await pilot.press("p")  # type: ignore[attr-defined]
    await settle(pilot)  # type: ignore[arg-type]
    await pilot.press("down", "enter")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: screen.profile_spec == "kumomta-extended")  # type: ignore[arg-type]
    await settle(pilot)  # type: ignore[arg-type]
    return screen


@pytest.mark.parametrize("size", [(80, 24), (60, 20), (120, 36)])
async def test_vectors_show_the_differing_field_and_details_are_reachable(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = make_app(make_simulated_host(tmp_path / "host"), host_facts=DEMO_FACTS)  # a Debian kernel's tcp_rmem
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = await open_extended(app, pilot)
        table = screen.query_one(ParamTable)
        key = "net.ipv4.tcp_rmem"
        row = next(r for r in table.rows_shown if r.key == key)
        current = table.get_cell(key, "current")
        differing = row.finding.current.split()[2]  # type: ignore[union-attr]
        if size[0] >= 80:
            assert differing in current.plain  # the max field, never cut away
            marked = [current.plain[span.start : span.end] for span in current.spans if span.style]
            assert marked == [differing]
            proposed = table.get_cell(key, "proposed")
            assert row.write is not None and row.write.split()[2] in proposed.plain
        else:  # 60 columns leave 7 cells a value: cut, and marked as cut; d shows it whole
            assert current.plain.endswith("…")
        index = table.get_row_index(key)
        table.move_cursor(row=index)
        await pilot.press("d")
        await settle(pilot)
        details = screen.query_one(ParamDetails)
        if size[0] < 100:  # narrow: full-width in the table's place, with room to read
            assert not table.display and details.size.height >= size[1] - 6
        else:  # wide: d hides the side panel
            assert not details.display
        text = str(details.query_one("#details-text").render()) if details.display else ""
        if details.display:
            assert key in text and differing in text
        await pilot.press("escape" if size[0] < 100 else "d")
        await settle(pilot)
        assert table.display and details.display


async def test_tw_reuse_is_a_change_of_mode_in_the_details_and_the_preview(demo_dir: Path) -> None:
    app = make_app(make_demo_host(demo_dir), host_facts=DEMO_FACTS)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TuningScreen)
        table = screen.query_one(ParamTable)
        table.move_cursor(row=table.get_row_index("net.ipv4.tcp_tw_reuse"))
        await settle(pilot)
        text = str(screen.query_one(ParamDetails).query_one("#details-text").render())
        assert "changes mode: loopback only → all" in text and "lower" not in text
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ApplyScreen) and app.screen.stage == "preview")
        preview = str(app.screen.query_one("#apply-text").render())
        assert "changes mode: loopback only → all" in preview and "lower than now" not in preview
        assert "same parity" not in preview


async def test_host_compare_marks_a_cut_number_with_an_ellipsis(demo_dir: Path, tmp_path: Path) -> None:
    settings = make_demo_host(demo_dir)
    remember_host("127.0.0.1:1")  # unreachable: its column says why, the local one has the numbers
    app = make_app(settings, host_facts=DEMO_FACTS)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HostsScreen))
        await pilot.press("c")
        compare = app.screen.query_one("#hosts-compare", DataTable)
        await wait_for(pilot, lambda: compare.row_count > 0, 20)
        await settle(pilot)
        local = str(compare.get_row("kernel.shmmax")[1])  # 18446744073692774399: 20 digits
        assert local.startswith("✔ ok 1844674407") and local.endswith("…"), local
        assert str(compare.get_row("kernel.shmmax")[2]) == "unreachable"


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_the_boot_column_says_whether_each_value_survives_a_reboot(tmp_path: Path, size: tuple[int, int]) -> None:
    settings = make_simulated_host(tmp_path / "host")
    later = settings.system_root / "usr/lib/sysctl.d"
    later.mkdir(parents=True, exist_ok=True)
    (later / "99-vendor.conf").write_text("# read after 90-kumomta.conf\nvm.max_map_count = 65530\n")
    (later / "50-base.conf").write_text("net.core.somaxconn = 4096\nnet.core.rmem_default = 1000\n")
    app = make_app(settings, host_facts=DEMO_FACTS)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ParamTable)
        marks = {row.key: table.get_cell(row.key, "boot").plain for row in table.rows_shown}
        assert marks["vm.max_map_count"] == "⚠"  # the vendor file, read later, sets it back
        assert marks["net.core.rmem_max"] == "✔"  # the drop-in will set it
        assert marks["net.core.somaxconn"] == "✔"  # not changed; a file sets today's value at boot
        assert marks["net.core.rmem_default"] == "⚠"  # not changed; a file sets another value at boot
        assert marks["fs.file-max"] == "·"  # nobody sets it
        table.move_cursor(row=table.get_row_index("vm.max_map_count"))
        await settle(pilot)
        text = str(app.screen.query_one(ParamDetails).query_one("#details-text").render())
        assert f"{later / '99-vendor.conf'}:2sets65530" in "".join(text.split())  # wrapped across lines


async def test_at_60x20_every_column_fits_without_scrolling_sideways(tmp_path: Path) -> None:
    app = make_app(make_simulated_host(tmp_path / "host"), host_facts=DEMO_FACTS)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ParamTable)
        widths = sum(column.get_render_width(table) for column in table.ordered_columns)
        assert widths <= table.size.width and not table.show_horizontal_scrollbar
        assert table.get_cell("net.ipv4.tcp_tw_reuse", "proposed").plain == "1"
