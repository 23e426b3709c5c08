"""The app on a remote host, over a real OpenSSH server on 127.0.0.1.

The same keys as on the local host apply and roll back; what changes is
that every read and write goes through the SSH connection opened in the
screen's host worker (never on the event loop).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.settings import Settings
from kumotui.ui.app import make_app
from kumotui.ui.modals.apply import ApplyScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.host_header import HostHeader
from kumotui.ui.widgets.param_table import ParamTable
from tests.support.pilot import started
from tests.support.sshd import Sshd
from tests.support.trees import read_tree
from tests.support.waits import settle


async def test_apply_and_rollback_over_ssh(
    sshd: Sshd, sim_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sshd.env().items():
        monkeypatch.setenv(name, value)
    tree = sim_paths["tree"]  # on the "remote" host: this machine, reached over SSH
    settings = Settings(
        sysctl_root=tree,
        sysctl_d=sim_paths["sysctl_d"],
        state_dir=sim_paths["state"],
        system_root=sim_paths["system"],
        hosts=(sshd.spec,),
    )
    app = make_app(settings)
    async with started(app) as pilot:
        screen = app.screen
        assert isinstance(screen, TuningScreen)
        assert screen.query_one(HostHeader).facts is not None
        assert screen.query_one(HostHeader).facts.hostname == "mta-sim"  # read from the remote tree
        assert screen.query_one(ParamTable).row_count == 12
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ApplyScreen) and app.screen.stage == "preview"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.stage == "done", str(app.screen.query_one("#apply-text").render())
        await pilot.press("enter")
        await settle(pilot)
        assert read_tree(tree, "vm.max_map_count") == "768000"
        assert not screen.pending  # re-read over SSH after the apply
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert len(screen.pending) == 6
    assert read_tree(tree, "vm.max_map_count") == "65530"  # applied, then rolled back
    assert len(list((sim_paths["state"] / "journal").glob("*.json"))) == 2
