"""Files and directories kumotui keeps: private, never through a link, modes kept on rollback.

A journal entry is a list of files and values that ``rollback`` writes back
as root, so whoever can change the state dir can make root write anything.
Here the state dir, its ``journal/`` and ``runs/``, and the config dir are
made group-writable, world-writable or someone else's (uid 4242: the tests
run as root, which may chown), and kumotui must refuse before reading or
writing, saying what is wrong and how to fix it. Drop-ins and report
targets that are links must be refused, files kumotui creates get 0600
(0644 for the drop-ins other tools read) in 0700 directories, and a
rollback restores the drop-in's own mode.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kumotui.bench.records import RunConfig, list_runs, new_run, save_run
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts, RefusedPath
from kumotui.hosts.local import atomic_write
from kumotui.hosts.remembered import UserConfig, load_config, save_config
from kumotui.onboarding.guide import GuideState, save_state
from kumotui.settings import Settings
from kumotui.tuning.target import Target
from tests.support.cli import Cli
from tests.support.trees import host_flags, read_tree, snapshot

OTHER_UID = 4242
DECOY = "DECOY: a file kumotui must never write\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def record() -> object:
    config = RunConfig(backend="builtin", target="127.0.0.1:2525", concurrency=1, messages=1, body_size=1)
    facts = HostFacts("h", "k", 1, 1)
    return new_run(config, facts, {}, now=datetime(2026, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("bits", "owner", "problem"),
    [
        (0o775, None, "is writable by its group or others (mode 0775)"),
        (0o1777, None, "is writable by its group or others (mode 1777)"),
        (0o700, OTHER_UID, f"belongs to uid {OTHER_UID}, not to root"),
    ],
    ids=["group-writable", "world-writable-sticky", "someone-elses"],
)
def test_an_unsafe_state_dir_is_refused_before_anything_is_written(
    sim_paths: dict[str, Path], cli: Cli, bits: int, owner: int | None, problem: str
) -> None:
    state = sim_paths["state"]
    state.mkdir()
    state.chmod(bits)
    if owner is not None:
        os.chown(state, owner, owner)
    tree = snapshot(sim_paths["tree"])
    for command in (["journal"], ["apply", "--yes"], ["rollback", "--yes"]):
        run = cli(*command, *host_flags(sim_paths))
        assert run.returncode == 2, (command, run.stdout, run.stderr)
        assert f"{state} {problem}" in run.stderr and "Fix: ch" in run.stderr, run.stderr
    assert snapshot(sim_paths["tree"]) == tree
    assert not (state / "journal").exists() and not sim_paths["sysctl_d"].exists()


def test_an_unsafe_journal_dir_is_refused(sim_paths: dict[str, Path], cli: Cli) -> None:
    (sim_paths["state"] / "journal").mkdir(parents=True)
    (sim_paths["state"] / "journal").chmod(0o777)
    run = cli("journal", *host_flags(sim_paths))
    assert run.returncode == 2 and "journal is writable by its group or others (mode 0777)" in run.stderr


def test_an_ancestor_others_could_swap_is_refused_but_a_sticky_one_is_not(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    flags = [*host_flags(sim_paths)[:-6], "--state-dir", shared / "mine" / "state"]
    shared.chmod(0o777)
    for command in ("journal", "apply"):
        run = cli(command, "--yes" if command == "apply" else "--json", *flags)
        assert run.returncode == 2 and f"{shared} is writable by its group or others (mode 0777)" in run.stderr
    assert list(shared.iterdir()) == []  # refused before making anything there
    shared.chmod(0o1777)  # like /tmp: others cannot rename what is not theirs
    assert cli("journal", *flags).returncode == 0


def test_unsafe_runs_and_config_dirs_are_refused(tmp_path: Path, cli: Cli) -> None:
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True, mode=0o700)
    (state / "runs").chmod(0o770)
    run = cli("runs", "--state-dir", state)
    assert run.returncode == 2 and "runs is writable by its group or others (mode 0770)" in run.stderr
    with pytest.raises(KumotuiError, match="writable by its group"):
        save_run(state, record())  # type: ignore[arg-type]
    config = Path(os.environ["KUMOTUI_CONFIG_DIR"])
    (config / "profiles").mkdir(parents=True)
    (config / "profiles" / "mine.yaml").write_text(
        "name: mine\nparams:\n  vm.max_map_count: {value: 1, rule: at-least}\n"
    )
    config.chmod(0o757)
    check = cli("check", "--profile", "mine")
    assert check.returncode == 2 and f"{config} is writable by its group or others (mode 0757)" in check.stderr
    with pytest.raises(RefusedPath):
        load_config()
    with pytest.raises(RefusedPath):
        save_config(UserConfig(hosts=("mta1",)))


def test_files_kumotui_creates_are_private(sim_paths: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    state = sim_paths["state"]
    (entry,) = (state / "journal").iterdir()
    assert (mode(state), mode(state / "journal"), mode(entry)) == (0o700, 0o700, 0o600)
    assert mode(sim_paths["sysctl_d"]) == 0o755 and mode(sim_paths["sysctl_d"] / "90-kumomta.conf") == 0o644
    saved = save_run(state, record())  # type: ignore[arg-type]
    assert (mode(state / "runs"), mode(saved)) == (0o700, 0o600)
    save_state(state, GuideState())
    assert mode(state / "setup.json") == 0o600
    save_config(UserConfig(hosts=("mta1",)))
    config = Path(os.environ["KUMOTUI_CONFIG_DIR"])
    assert (mode(config), mode(config / "config.yaml")) == (0o700, 0o600)
    report = cli("report", list_runs(state)[0].id, "--output", tmp_path / "report.md", "--state-dir", state)
    assert report.returncode == 0 and mode(tmp_path / "report.md") == 0o600
    assert not [p for p in (*state.rglob(".*"), *sim_paths["sysctl_d"].glob(".*"))]  # no temp file left


def test_a_linked_drop_in_is_refused_and_its_target_untouched(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli
) -> None:
    decoy = tmp_path / "decoy.conf"
    decoy.write_text(DECOY)
    sim_paths["sysctl_d"].mkdir()
    link = sim_paths["sysctl_d"] / "90-kumomta.conf"
    link.symlink_to(decoy)
    tree = snapshot(sim_paths["tree"])
    for command in (["apply", "--yes"], ["apply", "--dry-run"]):
        run = cli(*command, *host_flags(sim_paths))
        assert run.returncode == 2, run.stdout + run.stderr
        assert f"{link} is a symbolic link; kumotui never writes through or replaces a link" in run.stderr
    assert link.is_symlink() and decoy.read_text() == DECOY
    assert snapshot(sim_paths["tree"]) == tree
    assert not (sim_paths["state"] / "journal").exists()  # refused at planning, before the journal


def test_a_drop_in_made_a_link_after_apply_is_not_followed_by_rollback(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli
) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    decoy = tmp_path / "decoy.conf"
    decoy.write_text(DECOY)
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    dropin.unlink()
    dropin.symlink_to(decoy)
    run = cli("rollback", "--yes", *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "is a symbolic link" in run.stderr
    assert dropin.is_symlink() and decoy.read_text() == DECOY


def test_a_linked_systemd_drop_in_is_refused(sim_paths: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    decoy = tmp_path / "decoy.conf"
    decoy.write_text(DECOY)
    unit_dir = sim_paths["system"] / "etc/systemd/system/kumomta.service.d"
    unit_dir.mkdir(parents=True)
    (unit_dir / "90-kumotui-nofile.conf").symlink_to(decoy)
    run = cli("limits", "--apply", "--yes", *host_flags(sim_paths))
    assert run.returncode == 2 and "is a symbolic link" in run.stderr, run.stdout + run.stderr
    assert decoy.read_text() == DECOY


@pytest.mark.parametrize("deleted", [False, True], ids=["changed", "deleted-meanwhile"])
def test_rollback_restores_the_drop_ins_own_mode(sim_paths: dict[str, Path], cli: Cli, deleted: bool) -> None:
    sim_paths["sysctl_d"].mkdir()
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    mine = "# mine\nnet.core.somaxconn = 8192\n"
    dropin.write_text(mine)
    dropin.chmod(0o640)
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    assert mode(dropin) == 0o644 and "vm.max_map_count = 768000" in dropin.read_text()
    (entry,) = (sim_paths["state"] / "journal").iterdir()
    assert json.loads(entry.read_text())["dropin"]["before_mode"] == 0o640
    if deleted:
        dropin.unlink()
    run = cli("rollback", "--yes", *host_flags(sim_paths))
    assert run.returncode == 0, run.stdout + run.stderr
    if deleted:  # the operator's deletion is a change since the apply: only the rolled-back keys' lines come back
        assert "changed since apply" in run.stdout and not dropin.exists()
    else:
        assert dropin.read_text() == mine and mode(dropin) == 0o640
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "65530"


def test_a_journal_entry_from_before_modes_were_recorded_still_rolls_back(sim_paths: dict[str, Path], cli: Cli) -> None:
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    (entry,) = (sim_paths["state"] / "journal").iterdir()
    data = json.loads(entry.read_text())
    for field in ("before_mode", "after_mode"):
        del data["dropin"][field]
    entry.write_text(json.dumps(data))
    assert cli("rollback", "--yes", *host_flags(sim_paths)).returncode == 0
    assert not (sim_paths["sysctl_d"] / "90-kumomta.conf").exists()


def test_a_report_target_that_is_a_link_is_refused(tmp_path: Path, cli: Cli) -> None:
    decoy = tmp_path / "decoy"
    decoy.write_text(DECOY)
    (tmp_path / "report.md").symlink_to(decoy)
    state = tmp_path / "state"
    run_id = save_run(state, record()).stem  # type: ignore[arg-type]
    run = cli("report", run_id, "--output", tmp_path / "report.md", "--state-dir", state)
    assert run.returncode == 2 and "is a symbolic link" in run.stderr, run.stdout + run.stderr
    assert decoy.read_text() == DECOY
    with pytest.raises(RefusedPath, match="is a symbolic link"):
        atomic_write(tmp_path / "report.md", "# report\n", private=False)


def test_settings_state_dir_for_the_app_is_checked_too(sim_paths: dict[str, Path]) -> None:
    """The app builds its target with the same factory: it refuses the same dirs."""
    sim_paths["state"].mkdir(mode=0o700)
    sim_paths["state"].chmod(0o770)
    settings = Settings(sysctl_root=sim_paths["tree"], sysctl_d=sim_paths["sysctl_d"], state_dir=sim_paths["state"])
    with pytest.raises(RefusedPath, match="Fix: chmod go-w"):
        Target.from_settings(settings)
