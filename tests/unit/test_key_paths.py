"""Keys are sysctl names, never paths: hostile keys and linked trees, against real files.

Each test plants a decoy file outside a simulated tree (or links the tree
to it), then tries to read or overwrite the decoy the way a shared profile
or an ``apply --set`` could: a key whose components are runs of '/' turns
into ``..`` under the procps '.'<->'/' swap, and a symbolic link inside the
tree leads anywhere. The decoy must keep its content and never be printed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from kumotui.hosts.local import LocalHost
from kumotui.tuning.profiles import is_valid_key
from kumotui.tuning.sysctl import KeyNameError, SysctlTree, key_to_relpath
from tests.support.cli import Cli
from tests.support.trees import host_flags, snapshot

SECRET = "DECOY-SECRET-7f3a\n"

# The tree is <tmp>/proc-sys; each of the first three reaches <tmp>/decoy
# ("kernel.//.//.decoy" is "kernel/../../decoy" once '.' and '/' swap).
ESCAPES = [
    "kernel.//.//.decoy",
    "net.core.//.//.//.decoy",
    "kernel.//.//.proc-sys.kernel.//.//.decoy",
    "kernel.///.decoy",  # '...' is a legal name, but a component made only of separators is not
    "kernel./.decoy",
    "kernel..decoy",
    "net.core.",
]


@pytest.fixture
def decoy(tmp_path: Path) -> Path:
    """A file beside the simulated tree that no key may name."""
    path = tmp_path / "decoy"
    path.write_text(SECRET)
    return path


def hostile_profile(tmp_path: Path, key: str, value: str = "pwned") -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(f"name: hostile\nparams:\n  '{key}': {{value: '{value}', rule: exactly, why: x}}\n")
    return path


@pytest.mark.parametrize("key", ESCAPES)
def test_keys_whose_translation_leaves_the_tree_are_refused(key: str) -> None:
    assert not is_valid_key(key)
    with pytest.raises(KeyNameError, match="not a sysctl name"):
        key_to_relpath(key)


def test_procps_names_with_slashes_inside_a_component_still_work(tmp_path: Path) -> None:
    assert is_valid_key("net.ipv4.conf.eth0/100.rp_filter")
    assert key_to_relpath("net.ipv4.conf.eth0/100.rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"


@pytest.mark.parametrize("key", ESCAPES[:3])
def test_check_with_a_hostile_profile_never_prints_the_decoy(
    key: str, sim_paths: dict[str, Path], decoy: Path, tmp_path: Path, cli: Cli
) -> None:
    run = cli("check", "--profile", hostile_profile(tmp_path, key), *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "hostile.yaml:3" in run.stderr and "not a dotted sysctl name" in run.stderr
    assert "DECOY-SECRET" not in run.stdout + run.stderr


@pytest.mark.parametrize("key", ESCAPES[:3])
def test_apply_with_a_hostile_profile_never_writes_the_decoy(
    key: str, sim_paths: dict[str, Path], decoy: Path, tmp_path: Path, cli: Cli
) -> None:
    before = snapshot(sim_paths["tree"])
    run = cli("apply", "--yes", "--profile", hostile_profile(tmp_path, key), *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert decoy.read_text() == SECRET
    assert snapshot(sim_paths["tree"]) == before
    assert not sim_paths["state"].exists() and not sim_paths["sysctl_d"].exists()


@pytest.mark.parametrize("key", ESCAPES[:3])
def test_apply_set_with_a_hostile_key_never_writes_the_decoy(
    key: str, sim_paths: dict[str, Path], decoy: Path, cli: Cli
) -> None:
    run = cli("apply", "--yes", "--set", f"{key}=pwned", *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"--set '{key}': not a sysctl name" in run.stderr
    assert decoy.read_text() == SECRET
    assert "DECOY-SECRET" not in run.stdout + run.stderr


def link_in_tree(tree: Path, elsewhere: Path) -> None:
    """Replace the tree's ``kernel`` directory with a link to a directory outside the tree.

    ``shutil.rmtree`` refuses a link, so this can never delete through one.
    """
    shutil.rmtree(tree / "kernel")
    (tree / "kernel").symlink_to(elsewhere)


def test_a_linked_directory_in_the_tree_is_refused_not_followed(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli
) -> None:
    """The shape of a tree that links to /etc: kernel -> a directory outside with files named like keys."""
    outside = tmp_path / "etc-like"
    outside.mkdir()
    (outside / "shmmax").write_text(SECRET)
    link_in_tree(sim_paths["tree"], outside)
    check = cli("check", "--json", *host_flags(sim_paths))
    assert "DECOY-SECRET" not in check.stdout + check.stderr
    results = {r["key"]: r for r in json.loads(check.stdout)["results"]}
    assert results["kernel.shmmax"]["status"] == "unreadable" and results["kernel.shmmax"]["current"] is None
    run = cli("apply", "--yes", "--set", "kernel.shmmax=1", *host_flags(sim_paths))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "kernel.shmmax: cannot be set: refused: a symbolic link" in run.stderr
    assert (outside / "shmmax").read_text() == SECRET


def test_a_linked_parameter_file_is_refused_for_reads_and_writes(tmp_path: Path, decoy: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "net" / "core").mkdir(parents=True)
    (tree / "net" / "core" / "somaxconn").symlink_to(decoy)
    sysctl = SysctlTree(tree)
    reading = sysctl.read("net.core.somaxconn")
    assert reading.value is None and reading.error is not None and "symbolic link" in reading.error
    with pytest.raises(OSError) as refused:
        sysctl.write(LocalHost(), "net.core.somaxconn", "1\n")
    assert refused.value.errno == errno.ELOOP
    assert decoy.read_text() == SECRET


def test_a_linked_root_is_the_users_choice_but_nothing_below_it(tmp_path: Path) -> None:
    """``--sysctl-root`` may itself be reached through a link; below it, nothing is followed."""
    real = tmp_path / "real-tree"
    (real / "vm").mkdir(parents=True)
    (real / "vm" / "max_map_count").write_text("65530\n")
    (tmp_path / "tree-link").symlink_to(real)
    assert SysctlTree(tmp_path / "tree-link").read("vm.max_map_count").value == "65530"


def test_a_hard_link_fifo_or_device_in_the_tree_is_refused(tmp_path: Path, decoy: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "net" / "core").mkdir(parents=True)
    os.link(decoy, tree / "net" / "core" / "somaxconn")
    os.mkfifo(tree / "net" / "core" / "rmem_max")
    (tree / "net" / "core" / "wmem_max").symlink_to("/dev/zero")
    sysctl = SysctlTree(tree)
    for key, why in [("somaxconn", "hard link"), ("rmem_max", "not a regular file"), ("wmem_max", "symbolic link")]:
        reading = sysctl.read(f"net.core.{key}")  # a FIFO would block and /dev/zero never end, were they opened
        assert reading.value is None and why in str(reading.error), reading
        with pytest.raises(OSError):
            sysctl.write(LocalHost(), f"net.core.{key}", "1\n")
    assert decoy.read_text() == SECRET


def test_a_missing_key_is_never_created(tmp_path: Path) -> None:
    """As on /proc/sys, a key must exist: writing one that does not is ENOENT, and no file appears."""
    tree = tmp_path / "tree"
    (tree / "net" / "core").mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        SysctlTree(tree).write(LocalHost(), "net.core.nosuch", "1\n")
    assert not (tree / "net" / "core" / "nosuch").exists()


def test_the_real_proc_sys_refuses_to_create_a_key() -> None:
    """Reading only: the real tree answers a made-up key with ENOENT (the write path opens without O_CREAT)."""
    reading = SysctlTree().read("net.core.kumotui_no_such_key")
    assert reading.missing
    assert not Path("/proc/sys/net/core/kumotui_no_such_key").exists()


def test_a_tree_linking_to_the_real_etc_is_refused_not_followed(
    sim_paths: dict[str, Path], tmp_path: Path, cli: Cli
) -> None:
    """Read-only against the real /etc: ``kernel`` -> /etc would make ``kernel.issue`` print /etc/issue."""
    if not Path("/etc/issue").is_file():
        pytest.skip("no /etc/issue here")
    link_in_tree(sim_paths["tree"], Path("/etc"))
    profile = tmp_path / "peek.yaml"
    profile.write_text("name: peek\nparams:\n  kernel.issue: {value: x, rule: exactly, why: x}\n")
    run = cli("check", "--json", "--profile", profile, *host_flags(sim_paths))
    (result,) = json.loads(run.stdout)["results"]
    assert result["status"] == "unreadable" and result["current"] is None
    assert Path("/etc/issue").read_text().strip() not in run.stdout
