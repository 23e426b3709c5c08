"""Drift and order: rolling back an entry whose keys changed since, or under a newer apply, with the CLI in-process.

Changed keys show their live value against the journal's and need ``--yes``
(restore them too) or ``--keep-changed``; an older entry under a newer one
is refused with the ids in rollback order unless ``--newest-first`` or
``--yes``. After every rollback the drop-in and the runtime values agree.
"""

from __future__ import annotations

import json
from pathlib import Path

from kumotui.tuning.dropin import dropin_values
from kumotui.tuning.values import normalize
from tests.support.cli import Cli
from tests.support.trees import host_flags, read_tree, snapshot


def set_by_hand(paths: dict[str, Path], key: str, value: str) -> None:
    (paths["tree"] / key.replace(".", "/")).write_text(value + "\n")


def journal(cli: Cli, paths: dict[str, Path]) -> list[dict[str, object]]:
    run = cli("journal", "--json", *host_flags(paths))
    assert run.returncode == 0, run.stderr
    entries: list[dict[str, object]] = json.loads(run.stdout)
    return entries


def assert_agree(paths: dict[str, Path]) -> None:
    """Every setting the drop-in persists is what the kernel has now."""
    dropin = paths["sysctl_d"] / "90-kumomta.conf"
    text = dropin.read_text() if dropin.exists() else None
    for key, value in dropin_values(text, dropin).items():
        assert normalize(read_tree(paths["tree"], key)) == value, key


def test_a_key_changed_by_hand_shows_live_against_journaled_and_needs_an_answer(
    sim_paths: dict[str, Path], cli: Cli
) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    set_by_hand(sim_paths, "vm.max_map_count", "900000")
    before = snapshot(sim_paths["tree"])
    run = cli("rollback", *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "vm.max_map_count: 900000 (changed since apply; journaled 768000) -> 65530" in run.stdout
    assert "--yes" in run.stderr and "--keep-changed" in run.stderr
    assert snapshot(sim_paths["tree"]) == before  # nothing written without an answer
    assert len(journal(cli, sim_paths)) == 1


def test_yes_restores_a_changed_key_too(sim_paths: dict[str, Path], cli: Cli) -> None:
    original = snapshot(sim_paths["tree"])
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    set_by_hand(sim_paths, "vm.max_map_count", "900000")
    run = cli("rollback", "--yes", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    assert snapshot(sim_paths["tree"]) == original
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()
    assert f"Drop-in {sim_paths['sysctl_d'] / '90-kumomta.conf'}: removed" in run.stdout


def test_keep_changed_keeps_the_key_at_runtime_and_in_the_drop_in(sim_paths: dict[str, Path], cli: Cli) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    set_by_hand(sim_paths, "vm.max_map_count", "900000")
    run = cli("rollback", "--keep-changed", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "900000"
    assert read_tree(sim_paths["tree"], "net.core.rmem_max") == "212992"  # the rest restored
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    assert dropin_values(dropin.read_text(), dropin) == {"vm.max_map_count": "900000"}
    assert_agree(sim_paths)
    (_apply, rollback) = journal(cli, sim_paths)
    assert rollback["kept"] == ["vm.max_map_count"]
    assert "kept as they are" in run.stdout


def test_an_older_entry_under_a_newer_one_is_refused_with_the_order(sim_paths: dict[str, Path], cli: Cli) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    assert cli("apply", "--yes", "--set", "vm.max_map_count=1000000", *host_flags(sim_paths)).returncode == 0
    older, newer = (e["id"] for e in journal(cli, sim_paths))
    before = snapshot(sim_paths["tree"])
    run = cli("rollback", str(older), *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    lines = [line.strip() for line in run.stdout.splitlines() if line.strip().startswith("kumotui rollback ")]
    assert [line.split()[2] for line in lines] == [newer, older]
    assert "--newest-first" in run.stderr and "--yes" in run.stderr
    assert snapshot(sim_paths["tree"]) == before


def test_newest_first_rolls_back_the_newer_entry_then_the_older(sim_paths: dict[str, Path], cli: Cli) -> None:
    original = snapshot(sim_paths["tree"])
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    assert cli("apply", "--yes", "--set", "vm.max_map_count=1000000", *host_flags(sim_paths)).returncode == 0
    older, newer = (e["id"] for e in journal(cli, sim_paths))
    run = cli("rollback", str(older), "--newest-first", "--yes", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    assert snapshot(sim_paths["tree"]) == original
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()
    entries = journal(cli, sim_paths)
    assert [(e["kind"], e["target"]) for e in entries[2:]] == [("rollback", newer), ("rollback", older)]


def test_rolling_back_the_older_entry_alone_keeps_drop_in_and_runtime_in_step(
    sim_paths: dict[str, Path], cli: Cli
) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    assert cli("apply", "--yes", "--set", "net.core.somaxconn=8192", *host_flags(sim_paths)).returncode == 0
    older, _newer = (e["id"] for e in journal(cli, sim_paths))
    run = cli("rollback", str(older), "--yes", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    # The older apply's keys are back; the newer apply's key stays, at runtime and in the drop-in.
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "65530"
    assert read_tree(sim_paths["tree"], "net.core.somaxconn") == "8192"
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    assert dropin_values(dropin.read_text(), dropin) == {"net.core.somaxconn": "8192"}
    assert_agree(sim_paths)


def test_keep_changed_when_a_newer_entry_changed_the_key(sim_paths: dict[str, Path], cli: Cli) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    assert cli("apply", "--yes", "--set", "vm.max_map_count=1000000", *host_flags(sim_paths)).returncode == 0
    older, _newer = (e["id"] for e in journal(cli, sim_paths))
    run = cli("rollback", str(older), "--yes", "--keep-changed", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "1000000"
    assert read_tree(sim_paths["tree"], "net.ipv4.tcp_tw_reuse") == "2"
    assert_agree(sim_paths)


def test_an_interrupted_apply_rolls_back_only_what_it_wrote(sim_paths: dict[str, Path], cli: Cli) -> None:
    """A pending entry whose apply died after two writes (the files say so): the rest is already as before."""
    original = snapshot(sim_paths["tree"])
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    (entry_file,) = (sim_paths["state"] / "journal").glob("*.json")
    entry = json.loads(entry_file.read_text())
    # As if killed after the second value: the later values and the drop-in never changed.
    for change in entry["changes"][2:]:
        set_by_hand(sim_paths, change["key"], change["before"])
    (sim_paths["sysctl_d"] / "90-kumomta.conf").unlink()
    entry["status"] = "pending"
    entry_file.write_text(json.dumps(entry))
    undo = f"undo it with: kumotui rollback {entry['id']} --sysctl-root {sim_paths['tree']}"
    for command in ("check", "apply --dry-run", "apply --yes --only net.core.somaxconn"):
        said = cli(*command.split(), *host_flags(sim_paths))
        assert f"kumotui: warning: an apply on mta-sim was interrupted (journal entry {entry['id']}" in said.stderr
        assert undo in said.stderr, command
    assert "interrupted" in cli("journal", *host_flags(sim_paths)).stdout
    run = cli("rollback", "--yes", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(already as before)" in run.stdout and "interrupted" in run.stdout
    assert snapshot(sim_paths["tree"]) == original
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()
    assert "warning" not in cli("check", *host_flags(sim_paths)).stderr
