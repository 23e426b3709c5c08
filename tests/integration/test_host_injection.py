"""Host strings are data: a host that ssh would read as an option never reaches ssh.

The attack: ``--host=-Fevil`` (or a user ``-Fevil@...``) is a word OpenSSH reads
as ``-F evil``, a config file in the current directory, whose
``ProxyCommand`` ssh then runs, as whoever runs kumotui (often root). Before
the fix the address parser accepted it (``-`` was a valid host character) and
plumbum put it where ssh reads options, so ``touch MARKER`` ran. Now every
form is refused while the arguments are parsed (exit 2, nothing started),
and every ssh command line has ``--`` before the destination anyway.

The remembered-hosts file and the app's host switcher are covered in
``tests/ui/test_host_injection.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import kumotui
from tests.support.trees import MODERN_KERNEL, make_tree


@pytest.fixture
def trap(tmp_path: Path) -> tuple[Path, Path]:
    """A working directory holding ssh configs whose ProxyCommand touches a marker; the marker's path."""
    marker = tmp_path / "MARKER"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name in ("evil", "evil@localhost"):
        (cwd / name).write_text(f"Host *\n  ProxyCommand touch {marker}\n")
    make_tree(cwd / "tree", MODERN_KERNEL)
    return cwd, marker


ATTACKS = {
    "config file as host": ["check", "--host=-Fevil"],
    "config file as user": ["check", "--host=-Fevil@localhost"],
    "ProxyCommand option": ["check", "--host=-oProxyCommand=touch {marker}"],
    "second host": ["check", "--host", "localhost", "--host=-Fevil"],
    "sink host": ["bench", "--local-sink", "--sink-host=-Fevil", "--messages", "1"],
    "the app": ["--host=-Fevil"],
    "guided setup": ["setup", "--host=-Fevil"],
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_host_beginning_with_dash_never_reaches_ssh(trap: tuple[Path, Path], attack: str) -> None:
    cwd, marker = trap
    argv = [arg.format(marker=marker) for arg in ATTACKS[attack]]
    run = kumotui(*argv, "--sysctl-root", "tree", cwd=cwd, timeout=30, stdin="")
    assert not marker.exists(), f"{attack}: ssh ran the ProxyCommand"
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot begin with '-'" in run.stderr and "Traceback" not in run.stderr
