"""Apply, persist and roll back on simulated trees: every path, real files, the CLI in-process.

The ``sudo -n`` writer and a write refused by a read-only mount live in
``tests/integration/`` (they need real processes and a mount namespace).
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kumotui.hosts.local import LocalHost
from kumotui.settings import Settings
from kumotui.tuning.apply import ApplyFailed, apply_plan
from kumotui.tuning.findings import evaluate
from kumotui.tuning.plan import make_plan
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.rollback import rollback
from kumotui.tuning.target import Target
from kumotui.tuning.validate import ValidationError
from tests.support.cli import Cli
from tests.support.trees import BELOW_ON_MODERN, MODERN_KERNEL, host_flags, read_tree, snapshot


def test_apply_raises_only_what_is_below_and_lowers_nothing(sim_paths: dict[str, Path], cli: Cli) -> None:
    run = cli("apply", "--yes", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    for key, value in MODERN_KERNEL.items():
        expected = BELOW_ON_MODERN.get(key, value)
        assert " ".join(read_tree(sim_paths["tree"], key).split()) == " ".join(expected.split()), key
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o644
    body = [line for line in dropin.read_text().splitlines() if line and not line.startswith("#")]
    assert body == [f"{k} = {v}" for k, v in BELOW_ON_MODERN.items()]
    assert "Written by kumotui" in dropin.read_text() and "kumotui rollback" in dropin.read_text()
    assert "✔ vm.max_map_count = 768000  (verified)" in run.stdout


@pytest.mark.processes  # procps' sysctl parses the file
def test_dropin_parses_with_procps(sim_paths: dict[str, Path], cli: Cli) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    sysctl = shutil.which("sysctl") or "/usr/sbin/sysctl"
    parsed = subprocess.run([sysctl, "--dry-run", "-p", str(dropin)], capture_output=True, text=True, check=True)
    assert parsed.stderr == ""  # procps reports bad lines on stderr (and still exits 0)
    assert parsed.stdout.splitlines() == [f"{k} = {v}" for k, v in BELOW_ON_MODERN.items()]


def test_second_identical_apply_changes_nothing_and_says_so(sim_paths: dict[str, Path], cli: Cli) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    first = (dropin.read_text(), dropin.stat().st_mtime_ns)
    journal_before = sorted((sim_paths["state"] / "journal").iterdir())
    again = cli("apply", "--yes", *host_flags(sim_paths))
    assert again.returncode == 0
    assert "Nothing to do" in again.stdout and "(unchanged)" in again.stdout
    assert (dropin.read_text(), dropin.stat().st_mtime_ns) == first
    assert sorted((sim_paths["state"] / "journal").iterdir()) == journal_before


def test_rollback_restores_values_and_removes_new_dropin(sim_paths: dict[str, Path], cli: Cli) -> None:
    before = snapshot(sim_paths["tree"])
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    undo = cli("rollback", "--yes", *host_flags(sim_paths))
    assert undo.returncode == 0, undo.stderr
    after = {k: " ".join(v.split()) for k, v in snapshot(sim_paths["tree"]).items()}
    assert after == {k: " ".join(v.split()) for k, v in before.items()}
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()
    entries = json.loads(cli("journal", "--json", *host_flags(sim_paths)).stdout)
    assert [e["kind"] for e in entries] == ["apply", "rollback"]
    assert entries[0]["rolled_back_by"] == entries[1]["id"]
    assert entries[1]["target"] == entries[0]["id"] and entries[1]["status"] == "applied"
    again = cli("rollback", "--yes", *host_flags(sim_paths))
    assert again.returncode == 2 and "nothing to roll back" in again.stderr


def test_rollback_restores_previous_dropin_content(sim_paths: dict[str, Path], cli: Cli) -> None:
    sim_paths["sysctl_d"].mkdir(parents=True)
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    dropin.write_text("# mine\nnet.core.somaxconn = 8192\n")
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    assert "net.core.somaxconn = 8192" in dropin.read_text()  # kept, and extended
    assert "vm.max_map_count = 768000" in dropin.read_text()
    assert cli("rollback", "--yes", *host_flags(sim_paths)).returncode == 0
    assert dropin.read_text() == "# mine\nnet.core.somaxconn = 8192\n"


def test_only_and_set(sim_paths: dict[str, Path], cli: Cli) -> None:
    run = cli(
        "apply",
        "--yes",
        "--only",
        "vm.max_map_count,net.ipv4.tcp_tw_reuse",
        "--set",
        "net.core.somaxconn=8192",
        "--no-persist",
        *host_flags(sim_paths),
    )
    assert run.returncode == 0, run.stderr
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "768000"
    assert read_tree(sim_paths["tree"], "net.ipv4.tcp_tw_reuse") == "1"
    assert read_tree(sim_paths["tree"], "net.core.somaxconn") == "8192"
    assert read_tree(sim_paths["tree"], "net.core.rmem_max") == "212992"  # not in --only
    assert not sim_paths["sysctl_d"].exists()
    bad = cli("apply", "--yes", "--only", "vm.nope", *host_flags(sim_paths))
    assert bad.returncode == 2 and "vm.nope" in bad.stderr


@pytest.mark.parametrize(
    "hostile",
    [
        "net.core.somaxconn=1; rm -rf /",
        "net.core.somaxconn=1\nvm.max_map_count=1",
        "net.core.somaxconn=$(reboot)",
        "net.core.somaxconn=`id`",
        "net.core.somaxconn=",
        "net.core.somaxconn",
        "net.ipv4.tcp_tw_reuse=7",
        "net.ipv4.ip_local_port_range=9000 8000",
        "net.ipv4.ip_local_port_range=80 9000",
        "net.ipv4.ip_local_port_range=5000",
        "../../etc/passwd=1",
        "kernel.nope=1",
    ],
)
def test_hostile_or_invalid_set_changes_nothing(sim_paths: dict[str, Path], hostile: str, cli: Cli) -> None:
    before = snapshot(sim_paths["tree"])
    run = cli("apply", "--yes", "--set", hostile, *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout
    assert "Traceback" not in run.stderr and run.stderr.startswith("kumotui: ")
    assert snapshot(sim_paths["tree"]) == before
    assert not sim_paths["state"].exists() and not sim_paths["sysctl_d"].exists()


def test_set_lowering_below_target_needs_yes(sim_paths: dict[str, Path], cli: Cli) -> None:
    run = cli("apply", "--set", "net.core.somaxconn=512", *host_flags(sim_paths), stdin="")
    assert run.returncode == 2 and "--yes" in run.stderr
    assert read_tree(sim_paths["tree"], "net.core.somaxconn") == "4096"
    assert "below the profile's recommendation" in run.stdout
    forced = cli("apply", "--yes", "--set", "net.core.somaxconn=512", *host_flags(sim_paths))
    assert forced.returncode == 0 and read_tree(sim_paths["tree"], "net.core.somaxconn") == "512"


def test_dry_run_writes_nothing_at_all(sim_paths: dict[str, Path], cli: Cli) -> None:
    before = snapshot(sim_paths["tree"])
    run = cli("apply", "--dry-run", *host_flags(sim_paths))
    assert run.returncode == 0
    assert "vm.max_map_count: 65530 -> 768000" in run.stdout
    assert "net.ipv4.ip_local_port_range: 32768 60999 -> 5000 63001" in run.stdout
    assert "vm.max_map_count = 768000" in run.stdout  # the drop-in as it would be written
    assert snapshot(sim_paths["tree"]) == before
    assert not sim_paths["state"].exists() and not sim_paths["sysctl_d"].exists()


def test_boot_precedence_warnings(sim_paths: dict[str, Path], cli: Cli) -> None:
    system = sim_paths["system"]
    (system / "usr/lib/sysctl.d").mkdir(parents=True)
    (system / "run/sysctl.d").mkdir(parents=True)
    (system / "etc").mkdir(parents=True)
    # Later by name: overrides ours.
    (system / "usr/lib/sysctl.d/99-vendor.conf").write_text("# vendor\nvm.max_map_count = 1000\n")
    # Earlier by name: ours wins, no warning.
    (system / "run/sysctl.d/10-early.conf").write_text("net.core.rmem_max=1\n")
    # Same name as ours in a lower directory: shadowed by ours, no warning.
    (system / "usr/lib/sysctl.d/90-kumomta.conf").write_text("net.core.wmem_max = 1\n")
    # /etc/sysctl.conf is read last and wins; a glob pattern matches too.
    (system / "etc/sysctl.conf").write_text("\n\nnet/ipv4/tcp_tw_reuse = 0\n")
    run = cli("apply", "--dry-run", *host_flags(sim_paths))
    warnings = [line for line in run.stdout.splitlines() if "boot precedence" in line]
    assert len(warnings) == 2, run.stdout
    assert f"{system}/usr/lib/sysctl.d/99-vendor.conf:2 sets 1000" in warnings[0] + warnings[1]
    assert f"{system}/etc/sysctl.conf:3 sets 0" in warnings[0] + warnings[1]


class ClampingHost(LocalHost):
    """A host whose 'kernel' keeps at most 10 huge pages, like one short of memory."""

    def write_value(self, root: Path, relative: str, text: str) -> None:
        if relative.endswith("/nr_hugepages") and int(text) > 10:
            text = "10\n"
        super().write_value(root, relative, text)


def test_value_read_back_differently_is_restored(sim_paths: dict[str, Path]) -> None:
    settings = Settings(
        sysctl_root=sim_paths["tree"],
        sysctl_d=sim_paths["sysctl_d"],
        state_dir=sim_paths["state"],
        system_root=sim_paths["system"],
    )
    target = Target.from_settings(settings, host=ClampingHost())
    profile = load_profile("kumomta")
    plan = make_plan(profile, evaluate(profile, target.tree), target)
    with pytest.raises(ApplyFailed) as failure:
        apply_plan(plan, target)
    assert "vm.nr_hugepages = 20: the kernel kept 10 instead" in str(failure.value)
    assert read_tree(sim_paths["tree"], "vm.nr_hugepages") == "0"
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "65530"
    assert failure.value.outcome.entry.status == "restored"
    with pytest.raises(Exception, match="nothing to roll back"):
        rollback(target)


def test_plan_reports_every_invalid_value_at_once(sim_paths: dict[str, Path]) -> None:
    settings = Settings(sysctl_root=sim_paths["tree"], sysctl_d=sim_paths["sysctl_d"], state_dir=sim_paths["state"])
    target = Target.from_settings(settings)
    profile = load_profile("kumomta")
    with pytest.raises(ValidationError) as caught:
        make_plan(
            profile,
            evaluate(profile, target.tree),
            target,
            sets={"net.ipv4.tcp_tw_reuse": "9", "net.core.somaxconn": "many"},
        )
    message = str(caught.value)
    assert "tcp_tw_reuse: 9 is out of range" in message and "somaxconn: 'many' is not valid" in message


def test_read_only_prints_exact_commands_and_changes_nothing(sim_paths: dict[str, Path], cli: Cli) -> None:
    before = snapshot(sim_paths["tree"])
    run = cli("apply", "--read-only", *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "kumotui cannot write here (--read-only was given)" in run.stdout
    tree = sim_paths["tree"]
    assert f"printf '%s\\n' '5000 63001' | sudo tee -- {tree}/net/ipv4/ip_local_port_range > /dev/null" in run.stdout
    assert f"printf '%s\\n' 768000 | sudo tee -- {tree}/vm/max_map_count > /dev/null" in run.stdout
    assert "sysctl -w" not in run.stdout  # a simulated tree never gets commands for the real kernel
    assert f"| sudo tee -- {sim_paths['sysctl_d']}/90-kumomta.conf > /dev/null" in run.stdout
    assert snapshot(sim_paths["tree"]) == before
    assert not sim_paths["state"].exists() and not sim_paths["sysctl_d"].exists()


def test_manual_steps_for_the_real_kernel_use_sysctl() -> None:
    from kumotui.tuning.plan import Change, Plan, manual_steps

    target = Target.from_settings(Settings(read_only=True))
    plan = Plan(
        "kumomta",
        (Change("net.ipv4.ip_local_port_range", "32768\t60999", "5000 63000"),),
        Path("/etc/sysctl.d/90-kumomta.conf"),
        None,
        "net.ipv4.ip_local_port_range = 5000 63000\n",
    )
    steps = manual_steps(plan, target)
    assert "sudo sysctl -w 'net.ipv4.ip_local_port_range=5000 63000'" in steps
    assert (
        "printf '%s\\n' 'net.ipv4.ip_local_port_range = 5000 63000' | sudo tee -- /etc/sysctl.d/90-kumomta.conf"
        in steps
    )
