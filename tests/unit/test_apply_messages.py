"""What apply and rollback say: bad ``--only``, the drop-in's path, keys the host lacks, restored keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.hosts.local import LocalHost
from kumotui.settings import Settings
from kumotui.tuning.apply import ApplyFailed, apply_plan
from kumotui.tuning.findings import evaluate
from kumotui.tuning.plan import make_plan
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.target import Target
from kumotui.ui.render import render_outcome
from tests.support.cli import Cli
from tests.support.trees import MODERN_KERNEL, host_flags, host_paths, make_tree, snapshot


@pytest.mark.parametrize("only", ["", ",", " , "])
def test_only_naming_no_key_is_an_error_not_the_whole_profile(sim_paths: dict[str, Path], cli: Cli, only: str) -> None:
    before = snapshot(sim_paths["tree"])
    run = cli("apply", "--yes", "--only", only, *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout
    assert run.stderr.startswith("kumotui: --only") and "names no key" in run.stderr
    assert snapshot(sim_paths["tree"]) == before
    assert not sim_paths["state"].exists()


def test_apply_and_rollback_print_the_drop_in_they_wrote_or_removed(sim_paths: dict[str, Path], cli: Cli) -> None:
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    run = cli("apply", "--yes", *host_flags(sim_paths))
    assert f"Drop-in {dropin}: written" in run.stdout
    undo = cli("rollback", "--yes", *host_flags(sim_paths))
    assert f"Drop-in {dropin}: removed" in undo.stdout
    dropin.write_text("# mine\nnet.core.somaxconn = 8192\n")
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    undo = cli("rollback", "--yes", *host_flags(sim_paths))
    assert f"Drop-in {dropin}: restored" in undo.stdout
    assert dropin.read_text() == "# mine\nnet.core.somaxconn = 8192\n"


def test_apply_names_the_profile_keys_this_host_lacks(tmp_path: Path, cli: Cli) -> None:
    values = {k: v for k, v in MODERN_KERNEL.items() if k not in ("kernel.shmmni", "vm.nr_hugepages")}
    paths = host_paths(tmp_path, make_tree(tmp_path / "tree", values))
    run = cli("apply", "--dry-run", *host_flags(paths))
    assert run.returncode == 0, run.stderr
    assert "this host lacks 2 of the profile's keys, left out: vm.nr_hugepages (missing), kernel.shmmni (missing)" in (
        run.stdout
    )
    only = cli("apply", "--dry-run", "--only", "vm.max_map_count", *host_flags(paths))
    assert "lacks" not in only.stdout  # not asked for: not worth a word


class ClampingHost(LocalHost):
    """A 'kernel' that keeps at most 10 huge pages (the last key of the plan)."""

    def write_value(self, root: Path, relative: str, text: str) -> None:
        if relative.endswith("nr_hugepages") and int(text) > 10:
            text = "10\n"
        super().write_value(root, relative, text)


def test_a_failed_apply_shows_the_keys_it_put_back_as_restored(sim_paths: dict[str, Path], cli: Cli) -> None:
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
    outcome = failure.value.outcome
    assert [r.key for r in outcome.results if r.restored] == [c.key for c in plan.changes]
    text = render_outcome(outcome, str(failure.value)).plain
    assert "read back, as written" not in text
    lines = {line.split()[1]: line for line in text.splitlines() if line and line[0] in "↺✔✖"}
    assert lines["vm.max_map_count"].split() == ["↺", "vm.max_map_count", "65530", "restored"]
    assert lines["net.ipv4.ip_local_port_range"].split()[-1] == "restored"
    assert lines["vm.nr_hugepages"].startswith("✖") and lines["vm.nr_hugepages"].endswith(
        "kept 10 instead (it may clamp the value or lack the resources, e.g. free memory for huge pages); restored 0"
    )
