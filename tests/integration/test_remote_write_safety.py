"""The same write rules on a remote host: the agent checks, over a real SSH connection.

The "remote" host is this machine through the session's real sshd, so the
agent (not the client) must refuse: a linked directory in the remote tree,
a linked drop-in, a state dir others may write. Decoys outside the tree
keep their content and are never printed.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from tests.support.cli import Cli
from tests.support.sshd import Sshd
from tests.support.trees import host_flags, snapshot

DECOY = "DECOY-REMOTE-SECRET\n"


def flags(sshd: Sshd, sim_paths: dict[str, Path]) -> list[str | Path]:
    return ["--host", sshd.spec, *host_flags(sim_paths)]


def test_a_linked_tree_is_refused_by_the_remote_agent(
    sshd: Sshd, sim_paths: dict[str, Path], tmp_path: Path, cli: Cli
) -> None:
    outside = tmp_path / "etc-like"
    outside.mkdir()
    (outside / "max_map_count").write_text(DECOY)
    vm = sim_paths["tree"] / "vm"
    shutil.rmtree(vm)  # refuses a link: never deletes through one
    vm.symlink_to(outside)
    check = cli("check", "--json", *flags(sshd, sim_paths), env=sshd.env())
    assert "DECOY-REMOTE" not in check.stdout + check.stderr
    results = {r["key"]: r for r in json.loads(check.stdout)["results"]}
    assert results["vm.max_map_count"]["status"] == "unreadable"
    run = cli("apply", "--yes", "--set", "vm.max_map_count=1", *flags(sshd, sim_paths), env=sshd.env())
    assert run.returncode == 2 and "refused: a symbolic link" in run.stderr, run.stdout + run.stderr
    assert (outside / "max_map_count").read_text() == DECOY


def test_a_linked_remote_drop_in_is_refused(sshd: Sshd, sim_paths: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    decoy = tmp_path / "decoy.conf"
    decoy.write_text(DECOY)
    sim_paths["sysctl_d"].mkdir()
    (sim_paths["sysctl_d"] / "90-kumomta.conf").symlink_to(decoy)
    tree = snapshot(sim_paths["tree"])
    run = cli("apply", "--yes", *flags(sshd, sim_paths), env=sshd.env())
    assert run.returncode == 2 and "is a symbolic link" in run.stderr, run.stdout + run.stderr
    assert decoy.read_text() == DECOY and snapshot(sim_paths["tree"]) == tree


def test_a_remote_state_dir_others_may_write_is_refused(sshd: Sshd, sim_paths: dict[str, Path], cli: Cli) -> None:
    sim_paths["state"].mkdir()
    sim_paths["state"].chmod(0o775)
    for command in (["journal"], ["apply", "--yes"]):
        run = cli(*command, *flags(sshd, sim_paths), env=sshd.env())
        assert run.returncode == 2, run.stdout + run.stderr
        assert f"{sim_paths['state']} is writable by its group or others (mode 0775)" in run.stderr
        assert f"Fix: chmod go-w {sim_paths['state']}" in run.stderr
    assert not (sim_paths["state"] / "journal").exists()


def test_remote_files_are_private_and_rollback_keeps_the_mode(sshd: Sshd, sim_paths: dict[str, Path], cli: Cli) -> None:
    sim_paths["sysctl_d"].mkdir()
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    dropin.write_text("net.core.somaxconn = 8192\n")
    dropin.chmod(0o600)
    assert cli("apply", "--yes", *flags(sshd, sim_paths), env=sshd.env()).returncode == 0
    (entry,) = (sim_paths["state"] / "journal").iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE((sim_paths["state"] / "journal").stat().st_mode) == 0o700
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o644
    assert cli("rollback", "--yes", *flags(sshd, sim_paths), env=sshd.env()).returncode == 0
    assert dropin.read_text() == "net.core.somaxconn = 8192\n" and stat.S_IMODE(dropin.stat().st_mode) == 0o600
