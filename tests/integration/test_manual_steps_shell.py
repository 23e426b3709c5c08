"""The read-only "commands to run" survive any value: executed by a real shell, they write exactly the file.

The commands kumotui shows when it may not write are meant to be pasted
into a root shell. Here they are run by ``bash`` with ``sudo`` (and
``sysctl``) replaced by shell functions, in a temporary directory, with
plans built by hand so values that validation would refuse still reach the
renderer: heredoc end markers, command substitutions, quotes, ``printf``
directives, backslashes, tabs and carriage returns. The written files must
be byte-for-byte the intended text, and no canary command may run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kumotui.settings import Settings
from kumotui.tuning.plan import Change, Plan, manual_steps
from kumotui.tuning.target import Target
from tests.support.trees import MODERN_KERNEL, make_tree


def hostile_lines(canary: Path) -> list[str]:
    return [
        "# Written by kumotui",
        "vm.max_map_count = 768000",
        "KUMOTUI_EOF",
        f"touch {canary}",
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"'; touch {canary}; '",
        "\"double\" and 'single' quotes",
        "printf directives %s %n %d %%",
        "back\\slash and a trailing backslash \\",
        "-n",
        "--",
        "  leading and trailing spaces  ",
        "",
        "tab\there and cr\rhere",
        "unicode µ ✔ \u202e",
        "EOF",
    ]


def run_commands(commands: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``commands`` in bash with stand-ins: ``sudo`` runs its arguments, ``sysctl`` records them."""
    prelude = 'sudo() { "$@"; }\nsysctl() { printf "%s\\n" "$@" >> sysctl-args; }\n'
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-c", prelude + commands],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def simulated(tmp_path: Path) -> Target:
    tree = make_tree(tmp_path / "proc-sys", MODERN_KERNEL)
    return Target.from_settings(Settings(sysctl_root=tree, sysctl_d=tmp_path / "sysctl.d", state_dir=tmp_path / "st"))


@pytest.mark.parametrize("ending", ["\n", ""], ids=["ends-with-newline", "no-final-newline"])
def test_drop_in_commands_write_exactly_the_text(simulated: Target, tmp_path: Path, ending: str) -> None:
    canary = tmp_path / "canary"
    text = "\n".join(hostile_lines(canary)) + ending
    (tmp_path / "sysctl.d").mkdir()
    plan = Plan("p", (), simulated.dropin, None, text)
    done = run_commands(manual_steps(plan, simulated), tmp_path)
    assert not canary.exists(), "a line of the file ran as a command"
    assert done.returncode == 0, done.stderr
    assert simulated.dropin.read_bytes() == text.encode()
    assert oct(simulated.dropin.stat().st_mode & 0o777) == "0o644"


def test_runtime_commands_for_a_simulated_tree_write_exactly_the_value(simulated: Target, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    changes = tuple(
        Change(key, "0", value)
        for key, value in zip(
            ["vm.max_map_count", "net.core.somaxconn", "kernel.shmmni"],
            ["1\nKUMOTUI_EOF\ntouch " + str(canary), f"$(touch {canary})", "x' ; touch " + str(canary) + " ; '"],
            strict=True,
        )
    )
    plan = Plan("p", changes, simulated.dropin, None, None)
    done = run_commands(manual_steps(plan, simulated), tmp_path)
    assert done.returncode == 0, done.stderr
    for change in changes:
        assert simulated.tree.path(change.key).read_text() == change.after + "\n"
    assert not canary.exists()


def test_runtime_commands_for_the_real_kernel_pass_one_argument(tmp_path: Path) -> None:
    """For /proc/sys the command is ``sysctl -w KEY=VALUE``: exactly two arguments, whatever the value."""
    canary = tmp_path / "canary"
    target = Target.from_settings(Settings(read_only=True, state_dir=tmp_path / "st"))
    value = f"5000 $(touch {canary})'\"`x`"
    plan = Plan("p", (Change("net.ipv4.ip_local_port_range", "1 2", value),), target.dropin, None, None)
    done = run_commands(manual_steps(plan, target), tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sysctl-args").read_text() == f"-w\nnet.ipv4.ip_local_port_range={value}\n"
    assert not canary.exists()
