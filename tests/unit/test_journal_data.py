"""The journal is data, never orders: hostile and malformed entries against ``rollback`` and ``journal``.

Each test writes a real apply's journal entry, tampers with it the way an
attacker who can write the journal would, and runs the CLI in-process on a
simulated tree. A decoy file stands where a tampered path points; the test
fails if the decoy changes, if a planted command runs, or if the CLI shows a
traceback instead of an error that names the file.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.trees import host_flags, read_tree, snapshot

Entry = dict[str, Any]


def applied(cli: Cli, paths: dict[str, Path], *extra: str) -> Path:
    """Apply for real and return the journal entry's file."""
    run = cli("apply", "--yes", *extra, *host_flags(paths))
    assert run.returncode == 0, run.stdout + run.stderr
    (entry,) = sorted((paths["state"] / "journal").glob("*.json"))
    return entry


def tamper(path: Path, change: Callable[[Entry], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def refused(run: Any, *words: str) -> None:
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("kumotui: ") and "Traceback" not in run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


@pytest.fixture
def decoy(tmp_path: Path) -> Path:
    """A file outside every tree and drop-in dir, standing in for /etc/passwd."""
    path = tmp_path / "decoy"
    path.write_text("1234\n")
    return path


@pytest.mark.parametrize(
    "key",
    [
        "net.//.//.decoy",  # procps' '/' -> '.' swap turns each '//' into '..'
        "net.core.//.//.//.decoy",
        "net././/.//.decoy",
    ],
)
def test_rollback_refuses_a_key_that_is_a_path(
    sim_paths: dict[str, Path], cli: Cli, decoy: Path, tmp_path: Path, key: str
) -> None:
    # The tree is tmp/proc-sys: the key climbs out of it to tmp/decoy.
    raw = key.translate(str.maketrans("./", "/."))  # procps' swap, without kumotui's refusal
    assert (sim_paths["tree"] / raw).resolve() == decoy.resolve()
    entry = applied(cli, sim_paths)
    tamper(entry, lambda e: e["changes"].append({"key": key, "before": "4096", "after": "1234"}))
    tree_before = snapshot(sim_paths["tree"])
    run = cli("rollback", "--yes", *host_flags(sim_paths))
    refused(run, key, "not a sysctl name")
    assert decoy.read_text() == "1234\n"
    assert snapshot(sim_paths["tree"]) == tree_before  # refused as a whole: nothing restored either


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kernel.hostname", "mta-sim\nkernel.core_pattern = |/bin/sh -c id"),
        ("kernel.hostname", "x; touch /tmp/kumotui-pwned"),
        ("kernel.hostname", "$(reboot)"),
        ("vm.max_map_count", "65530 1"),
        ("vm.max_map_count", "99999999999999999999999"),
        ("net.ipv4.ip_local_port_range", "80 90"),
    ],
)
def test_rollback_revalidates_every_value(sim_paths: dict[str, Path], cli: Cli, key: str, value: str) -> None:
    entry = applied(cli, sim_paths)

    def plant(data: Entry) -> None:
        data["changes"] = [c for c in data["changes"] if c["key"] != key]
        data["changes"].append({"key": key, "before": value, "after": read_tree(sim_paths["tree"], key)})

    tamper(entry, plant)
    tree_before = snapshot(sim_paths["tree"])
    run = cli("rollback", "--yes", *host_flags(sim_paths))
    refused(run, str(entry.stem), key)
    assert snapshot(sim_paths["tree"]) == tree_before


@pytest.mark.parametrize("before", [None, "pwned\n"], ids=["remove", "overwrite"])
def test_rollback_touches_only_the_files_kumotui_manages(
    sim_paths: dict[str, Path], cli: Cli, decoy: Path, before: str | None
) -> None:
    entry = applied(cli, sim_paths)
    tamper(entry, lambda e: e.update(dropin={"path": str(decoy), "before": before, "after": "1234\n"}))
    run = cli("rollback", "--yes", *host_flags(sim_paths))
    refused(run, str(decoy), "not a file kumotui manages")
    assert decoy.read_text() == "1234\n"


def test_an_entry_from_another_drop_in_dir_says_which_flag(
    sim_paths: dict[str, Path], cli: Cli, tmp_path: Path
) -> None:
    applied(cli, sim_paths)
    elsewhere = {**sim_paths, "sysctl_d": tmp_path / "other-sysctl.d"}
    run = cli("rollback", "--yes", *host_flags(elsewhere))
    refused(run, "not a file kumotui manages", "--sysctl-d")
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "768000"  # still applied


def shim(bin_dir: Path, name: str, canary: Path) -> Path:
    """A command that only records that it ran (so a planted command cannot do harm)."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "$0 $*" >> {canary}\n')
    path.chmod(0o755)
    return path


def test_the_reload_step_is_never_read_from_the_journal(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = tmp_path / "ran"
    bin_dir = tmp_path / "bin"
    for name in ("rm", "systemctl", "touch"):
        shim(bin_dir, name, canary)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    # Only run the planted commands where they are harmless.
    assert shutil.which("rm") == str(bin_dir / "rm") and shutil.which("systemctl") == str(bin_dir / "systemctl")
    flags = ["--system-root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]
    run = cli("limits", "--concurrency", "20000", "--apply", "--yes", *flags)
    assert run.returncode == 0, run.stderr
    (entry,) = (tmp_path / "state" / "journal").glob("*.json")
    tamper(entry, lambda e: e.update(reload=["rm", "-rf", "/"]))
    undo = cli("rollback", "--yes", *flags)
    assert undo.returncode == 0, undo.stdout + undo.stderr
    ran = canary.read_text().splitlines() if canary.exists() else []
    assert [
        line for line in ran if not line.endswith("systemctl show kumomta.service --property=LimitNOFILE,LoadState")
    ] == []
    assert not (tmp_path / "root/etc/systemd/system/kumomta.service.d/90-kumotui-nofile.conf").exists()


@pytest.mark.parametrize(
    "content",
    [
        "[Service]\nExecStartPre=/bin/touch /tmp/kumotui-pwned\nLimitNOFILE=65536\n",
        "[Unit]\nAfter=evil.service\n",
        "[Service]\nLimitNOFILE=65536\x1b]0;x\x07\n",
    ],
)
def test_a_unit_drop_in_is_restored_only_as_kumotui_writes_it(tmp_path: Path, cli: Cli, content: str) -> None:
    flags = ["--system-root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]
    assert cli("limits", "--concurrency", "20000", "--apply", "--yes", *flags).returncode == 0
    unit = tmp_path / "root/etc/systemd/system/kumomta.service.d/90-kumotui-nofile.conf"
    written = unit.read_text()
    (entry,) = (tmp_path / "state" / "journal").glob("*.json")
    tamper(entry, lambda e: e["dropin"].update(before=content))
    refused(cli("rollback", "--yes", *flags), "drop-in's line")
    assert unit.read_text() == written


def test_a_sysctl_drop_in_with_a_hostile_line_is_not_restored(sim_paths: dict[str, Path], cli: Cli) -> None:
    entry = applied(cli, sim_paths)
    dropin = sim_paths["sysctl_d"] / "90-kumomta.conf"
    written = dropin.read_text()
    tamper(entry, lambda e: e["dropin"].update(before="net.//.//.decoy = 1\n"))
    refused(cli("rollback", "--yes", *host_flags(sim_paths)), "not a sysctl name")
    assert dropin.read_text() == written


MALFORMED: dict[str, Callable[[Entry], object] | str] = {
    "not JSON": "{ this is not json",
    "nested too deeply": "[" * 200_000,
    "a list": "[]",
    "a key that is a number": lambda e: e["changes"][0].update(key=5),
    "a value that is a list": lambda e: e["changes"][0].update(before=["1"]),
    "an id that is a number": lambda e: e.update(id=5),
    "an id that is not the file's": lambda e: e.update(id="20990101-000000-0000"),
    "an unknown kind": lambda e: e.update(kind="exec"),
    "an unknown status": lambda e: e.update(status="done"),
    "a drop-in path that is a number": lambda e: e["dropin"].update(path=7),
    "a drop-in that is a string": lambda e: e.update(dropin="/etc/passwd"),
    "an unknown field": lambda e: e.update(command=["sh", "-c", "id"]),
    "changes that are an object": lambda e: e.update(changes={"key": "vm.max_map_count"}),
    "a change with an extra field": lambda e: e["changes"][0].update(path="/etc/passwd"),
    "a reload that is a string": lambda e: e.update(reload="rm -rf /"),
    "a target that is not an id": lambda e: e.update(target="../../x"),
    "a host with control characters": lambda e: e.update(host="mta\x1b[2J"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_entries_are_errors_naming_the_file(sim_paths: dict[str, Path], cli: Cli, case: str) -> None:
    entry = applied(cli, sim_paths)
    change = MALFORMED[case]
    if isinstance(change, str):
        entry.write_text(change)
    else:
        tamper(entry, change)
    tree_before = snapshot(sim_paths["tree"])
    for command in (["journal"], ["journal", "--json"], ["rollback", "--yes"], ["rollback", entry.stem[:8], "--yes"]):
        run = cli(*command, *host_flags(sim_paths))
        refused(run, entry.name)
    assert snapshot(sim_paths["tree"]) == tree_before
    # The next apply still works and says the journal needs attention.
    again = cli("apply", "--yes", "--set", "net.core.somaxconn=8192", *host_flags(sim_paths))
    assert again.returncode == 0, again.stderr
    assert f"warning: {sim_paths['state'] / 'journal' / entry.name}" in again.stderr


def test_journal_files_are_private(sim_paths: dict[str, Path], cli: Cli) -> None:
    entry = applied(cli, sim_paths)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
