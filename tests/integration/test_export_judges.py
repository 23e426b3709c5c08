"""The tools that read each export judge it: procps, TuneD's own loader and plugin, Ansible in check mode.

- sysctl-d: this machine's own sysctl files, as ``sysctl --system --dry-run``
  reads them, imported and exported again give procps the same values.
- tuned: TuneD's profile loader (with a stock ``include=``) and its sysctl
  plugin, from Debian's package, apply the export to a copy of a simulated
  host (:mod:`tests.support.tuned_judge`); the tree ends as ``kumotui apply``
  leaves another copy, and TuneD changed exactly the keys ``apply --dry-run``
  lists.
- ansible: ``ansible-playbook --syntax-check``, then ``--check --diff``
  against localhost (connection local) inside a mount namespace whose
  ``/proc/sys`` is the simulated tree, with the drop-in and unit paths under
  the test's directory: the tasks that would change are exactly the keys
  ``apply --dry-run`` lists, and nothing changed anywhere (the tree, the
  files, this machine's own values). Ansible takes seconds per run, so
  there are two runs in all (marker ``ansible``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kumotui.tuning.dropin import parse_conf
from kumotui.tuning.sysctl import key_to_relpath
from tests.support.cli import Cli
from tests.support.exports import dry_run_changes
from tests.support.trees import BELOW_ON_MODERN, host_flags, snapshot

REPO = Path(__file__).resolve().parents[2]
SYSCTL = shutil.which("sysctl") or "/usr/sbin/sysctl"
TUNED = REPO / ".ci" / "cache" / "tuned"


def required(what: str) -> None:
    """Skip locally, fail in CI (whose setup installs everything these judges need)."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the export judges: {what}")
    pytest.skip(what)


def real_values(keys: list[str]) -> dict[str, str]:
    """This machine's own values (read only), to prove they did not change."""
    return {
        k: Path("/proc/sys", key_to_relpath(k)).read_text()
        for k in keys
        if Path("/proc/sys", key_to_relpath(k)).exists()
    }


def system_settings() -> tuple[list[Path], dict[str, str]]:
    """The files ``sysctl --system`` reads on this machine, in its order, and the value each key ends with."""
    done = subprocess.run([SYSCTL, "--system", "--dry-run"], capture_output=True, text=True, check=True)
    files = [
        Path(line[len("* Applying ") : -len(" ...")])
        for line in done.stdout.splitlines()
        if line.startswith("* Applying ")
    ]
    values = {s.key: s.value for s in parse_conf(done.stdout, Path("stdout")) if "*" not in s.key}
    return [f for f in files if f.is_file()], values


def test_this_machines_sysctl_files_round_trip(tmp_path: Path, cli: Cli) -> None:
    """Every file procps reads at boot here (/usr/lib/sysctl.d, /etc/sysctl.d, /etc/sysctl.conf), read only."""
    files, expected = system_settings()
    if not expected:
        required("this machine has no sysctl settings under /usr/lib/sysctl.d or /etc/sysctl.d")
    before = real_values(list(expected))
    profile = tmp_path / "here.yaml"
    imported = cli("profile", "import", *files, "--name", "here", "-o", profile)
    assert imported.returncode == 0, imported.stderr
    exported = tmp_path / "90-here.conf"
    assert cli("export", "--profile", profile, "--profile-only", "--format", "sysctl-d", "-o", exported).returncode == 0
    parsed = subprocess.run([SYSCTL, "--dry-run", "-p", str(exported)], capture_output=True, text=True, check=True)
    assert parsed.stderr == ""
    assert {s.key: s.value for s in parse_conf(parsed.stdout, exported)} == expected
    assert real_values(list(expected)) == before


@pytest.fixture
def tuned_modules() -> Path:
    modules = TUNED / "usr/lib/python3/dist-packages"
    if not (modules / "tuned/profiles/loader.py").is_file():
        required(f"TuneD's modules are not unpacked under {TUNED} (bash .ci/setup --test)")
    return modules


def run_tuned(modules: Path, profiles: Path, name: str, tree: Path) -> dict[str, dict[str, str]]:
    judge = REPO / "tests" / "support" / "tuned_judge.py"
    done = subprocess.run(
        [sys.executable, str(judge), str(TUNED / "usr/lib/tuned"), str(profiles), name, str(tree)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(modules)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, dict[str, str]] = json.loads(done.stdout)
    return result


def changed_keys(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    return {
        path.replace("/", "."): " ".join(after[path].split())
        for path in after
        if " ".join(after[path].split()) != " ".join(before[path].split())
    }


@pytest.mark.parametrize("profile_only", [False, True], ids=["host", "profile-only"])
def test_tuned_applies_the_export_as_kumotui_apply_does(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli, tuned_modules: Path, profile_only: bool
) -> None:
    tree = sim_paths["tree"]
    changes = dry_run_changes(cli("apply", "--dry-run", *host_flags(sim_paths)).stdout)
    assert changes == BELOW_ON_MODERN
    flags = ["--profile-only", "--include", "network-throughput"] if profile_only else host_flags(sim_paths)
    assert cli("export", "--format", "tuned", *flags, "-o", tmp_path / "profiles" / "kumotui-kumomta").returncode == 0
    tuned_tree = tmp_path / "tuned-tree"
    shutil.copytree(tree, tuned_tree)
    before = snapshot(tree)
    judged = run_tuned(tuned_modules, tmp_path / "profiles", "kumotui-kumomta", tuned_tree)
    if profile_only:  # TuneD merged the stock profile in, ours winning
        assert judged["options"]["net.core.somaxconn"] == ">1024" and "net.ipv4.tcp_rmem" in judged["options"]
    assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    by_tuned, by_kumotui = snapshot(tuned_tree), snapshot(tree)
    assert changed_keys(before, by_tuned) == changed_keys(before, by_kumotui) == changes
    assert {k: " ".join(v.split()) for k, v in by_tuned.items()} == {
        k: " ".join(v.split()) for k, v in by_kumotui.items()
    }


# --- Ansible -------------------------------------------------------------------------

MOUNT_DRIVER = """
import os, subprocess, sys
tree, argv = sys.argv[1], sys.argv[2:]
subprocess.run(["mount", "--bind", tree, "/proc/sys"], check=True)
os.execv(argv[0], argv)
"""
"""Runs in a new mount namespace: the simulated tree becomes /proc/sys for ansible and its sysctl calls."""


@pytest.fixture
def ansible_playbook() -> Path:
    playbook = Path(sys.executable).parent / "ansible-playbook"
    if not playbook.is_file():
        required("ansible-playbook is not installed (the `test` dependency group: bash .ci/setup --test)")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        required("`unshare --mount` failed: the Ansible check runs in a mount namespace (CI runs as root)")
    return playbook


def ansible_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "ansible-home"
    return {
        **os.environ,
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }


def task_results(output: str) -> list[tuple[str, dict[str, object]]]:
    """(task name, localhost's result) for every task the json callback reported."""
    report = json.loads(output)
    return [(task["task"]["name"], task["hosts"]["localhost"]) for play in report["plays"] for task in play["tasks"]]


@pytest.mark.ansible
def test_ansible_check_mode_changes_exactly_what_apply_would(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli, ansible_playbook: Path
) -> None:
    # An existing drop-in keeps one key the host already has: exported, yet unchanged.
    sim_paths["sysctl_d"].mkdir(parents=True)
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    dropin.write_text("net.core.somaxconn = 4096\n")
    changes = dry_run_changes(cli("apply", "--dry-run", *host_flags(sim_paths)).stdout)
    assert changes == BELOW_ON_MODERN
    play, profile_play = tmp_path / "kumotui.yml", tmp_path / "profile.yml"
    assert cli("export", "--format", "ansible", *host_flags(sim_paths), "-o", play).returncode == 0
    assert cli("export", "--format", "ansible", "--profile-only", "-o", profile_play).returncode == 0
    env = ansible_env(tmp_path)
    inventory = ["-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"]

    syntax = subprocess.run(
        [str(ansible_playbook), "--syntax-check", *inventory, str(play), str(profile_play)],
        capture_output=True,
        text=True,
        env={**env, "ANSIBLE_STDOUT_CALLBACK": "default"},
        timeout=120,
    )
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr

    unit = tmp_path / "kumomta.service.d" / "90-kumotui-nofile.conf"
    tree_before, dropin_before = snapshot(sim_paths["tree"]), (dropin.read_bytes(), dropin.stat().st_mtime_ns)
    real_before = real_values(list(changes))
    check = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            MOUNT_DRIVER,
            str(sim_paths["tree"]),
            str(ansible_playbook),
            "--check",
            "--diff",
            *inventory,
            "-e",
            f"kumotui_sysctl_file={dropin}",
            "-e",
            f"kumotui_nofile_dropin={unit}",
            str(play),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-4000:]
    results = task_results(check.stdout)
    would_change = {name.split(" = ")[0] for name, r in results if r.get("changed") and " = " in name}
    assert would_change == set(changes)
    assert {name.split(" = ")[0] for name, _r in results if " = " in name} == {"net.core.somaxconn", *changes}
    assert any(r.get("changed") for name, r in results if name.startswith("kumomta.service open-file limit"))
    # Check mode wrote nothing: not the tree, not the drop-in, not the unit, not this machine.
    assert snapshot(sim_paths["tree"]) == tree_before
    assert (dropin.read_bytes(), dropin.stat().st_mtime_ns) == dropin_before
    assert not unit.parent.exists()
    assert real_values(list(changes)) == real_before
