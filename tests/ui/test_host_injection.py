"""Remembered hosts and the host switcher: a host ssh would read as an option never reaches ssh.

The config file is data anyone with write access to it (or a shared dotfiles
repository) controls. A remembered ``-Fevil`` made ssh read ``./evil`` as its
config and run its ``ProxyCommand`` when the switcher compared hosts or
switched to it. Now the file is refused, naming the entry; the add field
refuses such a host; and a hostile host string handed to the app anyway
(defence in depth) fails to open with a notice, never starting ssh.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.hosts import HostFacts
from kumotui.hosts.remembered import config_path, load_config
from kumotui.tuning.simulate import make_simulated_host
from kumotui.ui.app import make_app
from kumotui.ui.modals.hosts import LOCAL, HostsScreen
from tests.support.waits import settle

FACTS = HostFacts("mta-sim", "6.1.0-sim-amd64", 2, 4 * 2**30)


@pytest.fixture
def trap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a directory whose ``evil`` ssh config touches a marker; remember hostile hosts. Returns the marker."""
    marker = tmp_path / "MARKER"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "evil").write_text(f"Host *\n  ProxyCommand touch {marker}\n")
    monkeypatch.chdir(cwd)
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(f"hosts:\n  - -Fevil\n  - '-oProxyCommand=touch {marker}'\n")
    return marker


async def test_hostile_remembered_hosts_are_refused(trap: Path, tmp_path: Path) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=FACTS)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = HostsScreen(settings)
        await app.push_screen(screen)
        await settle(pilot)
        await pilot.press("c")  # compare every listed host: each one is connected to
        await settle(pilot)
        for row, _host in enumerate(screen.hosts[1:], start=1):  # switch to each listed one
            screen.query_one("#hosts-list").move_cursor(row=row)  # type: ignore[attr-defined]
            await pilot.press("enter")
            await settle(pilot)
            await app.push_screen(screen := HostsScreen(settings))
            await settle(pilot)
        assert not trap.exists(), "ssh ran the ProxyCommand"
        assert screen.hosts == [LOCAL]
        notices = [n.message for n in app._notifications]
        assert any("hosts[0]: '-Fevil': a host or user name cannot begin with '-'" in n for n in notices), notices

        await pilot.press("n", *"-Fevil", "enter")  # typed into the add field
        await settle(pilot)
        assert any(n.title == "Not added" for n in app._notifications)
    assert not trap.exists(), "ssh ran the ProxyCommand"
    assert "-Fevil" in config_path().read_text()  # refused, not rewritten behind the user's back


async def test_a_hostile_host_handed_to_the_app_never_starts_ssh(trap: Path, tmp_path: Path) -> None:
    settings = make_simulated_host(tmp_path / "host")
    app = make_app(settings, host_facts=FACTS)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.switch_host("-Fevil")
        await settle(pilot)
        assert not trap.exists(), "ssh ran the ProxyCommand"
        notices = [n.message for n in app._notifications]
        assert any("cannot begin with '-'" in n for n in notices), notices
    assert not trap.exists(), "ssh ran the ProxyCommand"
    with pytest.raises(Exception, match="hosts\\[0\\]"):
        load_config()
