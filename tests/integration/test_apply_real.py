"""Apply paths that need more than files: a real ``sudo -n``, and the kernel refusing a write.

Both run real processes against a simulated tree; the refused write uses a
read-only bind mount inside a private mount namespace (``unshare --mount``),
so nothing outside the test's own process tree ever sees it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kumotui.settings import Settings
from kumotui.tuning.apply import apply_plan
from kumotui.tuning.findings import evaluate
from kumotui.tuning.plan import make_plan
from kumotui.tuning.privilege import SudoWriter
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.rollback import rollback
from kumotui.tuning.target import Target
from tests.support.cli import Cli, kumotui
from tests.support.trees import host_flags, read_tree, snapshot


@pytest.mark.serial  # a mount namespace (unshare)
def test_write_failing_mid_plan_restores_earlier_writes(sim_paths: dict[str, Path], cli: Cli) -> None:
    """vm.nr_hugepages (last in the plan) is on a read-only file: everything before it is undone."""
    before = snapshot(sim_paths["tree"])
    victim = sim_paths["tree"] / "vm" / "nr_hugepages"
    args = ["apply", "--yes", *host_flags(sim_paths)]
    if os.geteuid() == 0:
        # Root ignores file modes; a read-only bind mount in a private mount
        # namespace refuses even root (EROFS) and vanishes with the process.
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        run = kumotui(*args, prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(victim)])
    else:
        victim.chmod(0o444)
        run = kumotui(*args)
    assert run.returncode == 1, run.stdout + run.stderr
    reason = run.stderr.lower()
    assert "vm.nr_hugepages = 20" in run.stderr
    assert "read-only file system" in reason or "permission denied" in reason
    assert "Restored the previous values" in run.stderr
    assert snapshot(sim_paths["tree"]) == {k: v for k, v in before.items()}
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()
    entries = json.loads(cli("journal", "--json", *host_flags(sim_paths)).stdout)
    assert entries[-1]["status"] == "restored" and "vm.nr_hugepages" in entries[-1]["error"]


def test_sudo_writer_applies_and_rolls_back(sim_paths: dict[str, Path]) -> None:
    """The `sudo -n` path for real: each write is one request to kumotui's agent running as root."""
    if not shutil.which("sudo") or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("CI installs sudo; `sudo -n true` must work there")
        pytest.skip("sudo -n is not available to this user")
    settings = Settings(
        sysctl_root=sim_paths["tree"],
        sysctl_d=sim_paths["sysctl_d"],
        state_dir=sim_paths["state"],
        system_root=sim_paths["system"],
    )
    target = Target.from_settings(settings)
    writer = SudoWriter(target.host)
    profile = load_profile("kumomta")
    outcome = apply_plan(make_plan(profile, evaluate(profile, target.tree), target), target, writer=writer)
    assert outcome.ok and outcome.dropin == "written"
    assert read_tree(sim_paths["tree"], "net.ipv4.ip_local_port_range") == "5000 63001"
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o644
    assert not list(sim_paths["sysctl_d"].glob(".*"))  # no temp file left behind
    rollback(target, writer=writer)
    assert read_tree(sim_paths["tree"], "net.ipv4.ip_local_port_range").split() == ["32768", "60999"]
    assert not dropin.exists()
