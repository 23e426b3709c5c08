"""Failures mid-apply, for real: a dropped SSH connection, a full disk, a write that never answers.

Each one happens after the journal entry and some writes: the host must end
up as it was (restored now, or by the next ``rollback`` from the journal),
the journal must say what happened, and the message must say how to undo.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kumotui.hosts.address import HostSpec
from kumotui.hosts.local import LocalHost
from kumotui.hosts.remote import RemoteHost
from kumotui.settings import Settings
from kumotui.tuning.apply import ApplyFailed, apply_plan
from kumotui.tuning.findings import evaluate
from kumotui.tuning.plan import make_plan
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.target import Target
from tests.support.cli import Cli, kumotui
from tests.support.sshd import Sshd
from tests.support.trees import host_flags, read_tree, snapshot


def settings_for(paths: dict[str, Path], **extra: object) -> Settings:
    return Settings(
        sysctl_root=paths["tree"],
        sysctl_d=paths["sysctl_d"],
        state_dir=paths["state"],
        system_root=paths["system"],
        **extra,  # type: ignore[arg-type]
    )


class DroppingWriter:
    """Writes through the remote host; before its third value the SSH channel to the agent is killed."""

    def __init__(self, host: RemoteHost) -> None:
        self.host = host
        self.count = 0

    def write_value(self, root: Path, relative: str, text: str) -> None:
        self.count += 1
        if self.count == 3:
            agent = self.host._agent
            assert agent.pid is not None
            os.kill(agent.pid, signal.SIGKILL)  # the ssh process carrying the agent
            agent.wait()
        self.host.write_value(root, relative, text)

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        self.host.replace_file(path, text, mode)

    def remove_file(self, path: Path) -> None:
        self.host.remove_file(path)


def test_an_ssh_drop_mid_apply_is_recovered_by_the_next_rollback(
    sshd: Sshd, sim_paths: dict[str, Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUMOTUI_SSH_CONFIG", str(sshd.ssh_config))
    before = snapshot(sim_paths["tree"])
    remote = RemoteHost(HostSpec.parse(sshd.spec))
    try:
        target = Target.from_settings(settings_for(sim_paths, hosts=(sshd.spec,)), remote)
        profile = load_profile("kumomta")
        plan = make_plan(profile, evaluate(profile, target.tree), target)
        with pytest.raises(ApplyFailed) as failure:
            apply_plan(plan, target, writer=DroppingWriter(remote))
    finally:
        remote.close()
    message = str(failure.value)
    assert "connection was lost" in message and "Could NOT restore" in message
    assert "still says pending" in message and "kumotui rollback" in message
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "768000"  # half-applied, and it says so
    flags = ["--host", sshd.spec, *host_flags(sim_paths)]
    check = cli("check", *flags)
    entry_id = failure.value.outcome.entry.id
    assert f"was interrupted (journal entry {entry_id}" in check.stderr, check.stderr
    undo = cli("rollback", "--yes", *flags)
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert snapshot(sim_paths["tree"]) == before
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()


@pytest.mark.serial  # a mount namespace (unshare) and a tiny tmpfs
def test_a_full_disk_when_completing_the_journal_restores_everything(sim_paths: dict[str, Path]) -> None:
    """The state dir is a 16 KiB tmpfs: room for the lock and the pending entry, none for completing it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    before = snapshot(sim_paths["tree"])
    state = sim_paths["state"]
    state.mkdir()
    script = (
        'mount -t tmpfs -o size=16k,mode=0700 tmpfs "$0" && head -c 8192 /dev/zero > "$0/ballast" && '
        '"$@"; code=$?; cat "$0"/journal/*.json; exit $code'
    )
    run = kumotui(
        "apply",
        "--yes",
        *host_flags(sim_paths),
        prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(state)],
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "No space left on device" in run.stderr and "Restored the previous values" in run.stderr, run.stderr
    assert snapshot(sim_paths["tree"]) == before
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()
    # What the journal held when the namespace went: the entry with every original, still pending.
    entry = json.loads(run.stdout[run.stdout.index('{\n  "id"') :])
    assert entry["status"] == "pending" and len(entry["changes"]) == 6
    assert "still says pending" in run.stderr


class HangingWriter(LocalHost):
    """Its third value write runs a command that never answers, stopped by its deadline (a hung ``sudo``)."""

    def __init__(self, at: int = 3, where: str = "value") -> None:
        self.count = 0
        self.at = at
        self.where = where

    def _hang(self) -> None:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5, check=False)

    def write_value(self, root: Path, relative: str, text: str) -> None:
        self.count += 1
        if self.where == "value" and self.count == self.at:
            self._hang()
        super().write_value(root, relative, text)

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        if self.where == "dropin":
            self._hang()
        super().replace_file(path, text, mode)


@pytest.mark.parametrize("where", ["value", "dropin"])
def test_a_write_that_times_out_restores_and_journals(sim_paths: dict[str, Path], where: str) -> None:
    before = snapshot(sim_paths["tree"])
    target = Target.from_settings(settings_for(sim_paths))
    profile = load_profile("kumomta")
    plan = make_plan(profile, evaluate(profile, target.tree), target)
    writer = HangingWriter(where=where)
    with pytest.raises(ApplyFailed) as failure:
        apply_plan(plan, target, writer=writer)
    message = str(failure.value)
    assert "no answer within 0.5 s (timed out" in message and "Restored the previous values" in message
    assert snapshot(sim_paths["tree"]) == before
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()
    outcome = failure.value.outcome
    assert outcome.entry.status == "restored" and "timed out" in (outcome.entry.error or "")
    restored = [r.key for r in outcome.results if r.restored]
    assert restored == [c.key for c in plan.changes][: 2 if where == "value" else 6]
    journal = json.loads(next((sim_paths["state"] / "journal").glob("*.json")).read_text())
    assert journal["status"] == "restored"


def test_ctrl_c_mid_apply_restores_before_it_stops(sim_paths: dict[str, Path]) -> None:
    before = snapshot(sim_paths["tree"])
    target = Target.from_settings(settings_for(sim_paths))
    profile = load_profile("kumomta")
    plan = make_plan(profile, evaluate(profile, target.tree), target)

    class Interrupted(LocalHost):
        count = 0

        def write_value(self, root: Path, relative: str, text: str) -> None:
            self.count += 1
            if self.count == 4:
                raise KeyboardInterrupt
            super().write_value(root, relative, text)

    with pytest.raises(KeyboardInterrupt) as caught:
        apply_plan(plan, target, writer=Interrupted())
    assert any("Restored the previous values" in note for note in caught.value.__notes__)
    assert snapshot(sim_paths["tree"]) == before
