"""The host switcher: remember, forget, compare hosts side by side over a real sshd."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.hosts import HostFacts
from kumotui.hosts.remembered import load_config, remember_host
from kumotui.tuning.simulate import make_simulated_host
from kumotui.ui.app import make_app
from kumotui.ui.modals.hosts import HostsScreen
from tests.support.sshd import Sshd
from tests.support.waits import settle, wait_for

FACTS = HostFacts("mta-sim", "6.1.0-sim-amd64", 2, 4 * 2**30)


async def test_add_compare_forget(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sshd.env().items():
        monkeypatch.setenv(name, value)
    settings = make_simulated_host(tmp_path / "host")
    remember_host(sshd.spec)
    chosen: list[str | None] = []

    app = make_app(settings, host_facts=FACTS)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = HostsScreen(settings)
        await app.push_screen(screen, callback=chosen.append)
        await settle(pilot)
        assert screen.hosts == ["local", "kumotui-test"]

        await pilot.press("n")
        await pilot.press(*"root@mta9.example.net:2222")
        await pilot.press("enter")
        await settle(pilot)
        assert load_config().hosts == ("kumotui-test", "root@mta9.example.net:2222")

        await pilot.press("c")
        table = screen.query_one("#hosts-compare")
        await wait_for(pilot, lambda: table.row_count, timeout=20)  # type: ignore[attr-defined]
        columns = [str(c.label) for c in table.columns.values()]  # type: ignore[attr-defined]
        assert columns == ["Parameter", "local", "kumotui-test", "root@mta9.example.net:2222"]
        row = table.get_row("net.ipv4.tcp_tw_reuse")  # type: ignore[attr-defined]
        assert row[1] == "≠ differs 2" and row[2] == "≠ differs 2"  # the same simulated tree, locally and over SSH
        assert row[3] == "unreachable"

        table_hosts = screen.query_one("#hosts-list")
        table_hosts.move_cursor(row=2)  # type: ignore[attr-defined]
        await pilot.press("x")
        assert load_config().hosts == ("kumotui-test",)
        table_hosts.move_cursor(row=1)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: chosen)

    assert chosen == ["kumotui-test"]
