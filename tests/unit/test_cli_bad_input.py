"""Bad input gets one line and exit 2, never a traceback; data from a tree never reaches the terminal raw.

In-process (the ``cli`` fixture), where an uncaught exception fails the test
by itself: ``simulate`` into a file, a link, a place nothing can be made; a
``limits.conf`` whose ``nofile`` is not a number; and a simulated tree whose
``kernel.hostname`` and values carry terminal escape sequences (retitle the
window, clear the screen), printed by ``check`` and ``journal``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.trees import MODERN_KERNEL, make_tree

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
"""Retitle the terminal, clear it, paint everything red."""


def test_simulate_into_a_file(tmp_path: Path, cli: Cli) -> None:
    target = tmp_path / "file"
    target.write_text("mine\n")
    run = cli("simulate", target)
    assert run.returncode == 2 and "not a directory" in run.stderr and "Traceback" not in run.stderr
    assert target.read_text() == "mine\n"


@pytest.mark.parametrize("where", ["/proc/kumotui-cannot-be-made", "{tmp}/file/below-a-file"])
def test_simulate_where_nothing_can_be_made(where: str, tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "file").write_text("mine\n")
    run = cli("simulate", where.format(tmp=tmp_path))
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("kumotui: ") and "Traceback" not in run.stderr


def test_simulate_through_a_symlink_is_refused(tmp_path: Path, cli: Cli) -> None:
    elsewhere = tmp_path / "elsewhere"
    link = tmp_path / "link"
    link.symlink_to(elsewhere)  # dangling: it would be created at the link's target
    run = cli("simulate", link)
    assert run.returncode == 2 and "symbolic link" in run.stderr
    assert not elsewhere.exists()


def test_simulate_into_a_non_empty_dir(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "keep").write_text("mine\n")
    run = cli("simulate", tmp_path)
    assert run.returncode == 2 and "not empty" in run.stderr


@pytest.mark.parametrize(
    "value", ["lots", "9" * 5000, "١٠٠٠", "1_000", "0x10"], ids=["word", "5000-digits", "arabic", "underscore", "hex"]
)
def test_limits_conf_with_a_nofile_that_is_not_a_number(value: str, tmp_path: Path, cli: Cli) -> None:
    security = tmp_path / "root" / "etc" / "security"
    security.mkdir(parents=True)
    (security / "limits.conf").write_text(f"# ok\nkumod hard nofile {value}\n")
    run = cli("limits", "--system-root", tmp_path / "root", "--state-dir", tmp_path / "state")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "limits.conf:2: nofile limit" in run.stderr and "is not a number" in run.stderr
    assert len(run.stderr) < 300


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    values = {
        **MODERN_KERNEL,
        "kernel.hostname": f"mta{HOSTILE}\u202eevil",
        "net.core.somaxconn": f"4096{HOSTILE}",
        "vm.max_map_count": "\r65530\x9b2J",
    }
    return make_tree(tmp_path / "tree", values)


def test_check_prints_tree_values_escaped(hostile_tree: Path, cli: Cli) -> None:
    run = cli("check", "--sysctl-root", hostile_tree)
    assert run.returncode == 1, run.stderr
    for raw in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert raw not in run.stdout + run.stderr, repr(raw)
    assert "4096\\x1b]0;owned\\x07\\x1b[2J\\x1b[31m" in run.stdout  # still shown, as escapes
    assert json.loads(cli("check", "--json", "--sysctl-root", hostile_tree).stdout)  # JSON escapes by itself


def test_journal_prints_the_host_name_escaped(hostile_tree: Path, tmp_path: Path, cli: Cli) -> None:
    flags = ["--sysctl-root", hostile_tree, "--sysctl-d", tmp_path / "sysctl.d", "--state-dir", tmp_path / "state"]
    flags += ["--system-root", tmp_path]
    applied = cli("apply", "--yes", "--only", "net.core.rmem_max", *flags)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    listed = cli("journal", *flags)
    assert listed.returncode == 0
    assert "\x1b" not in listed.stdout and "\u202e" not in listed.stdout
    assert "mta\\x1b]0;owned" in listed.stdout
