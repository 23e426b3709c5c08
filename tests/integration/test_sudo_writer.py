"""The ``sudo -n`` writer cannot be redirected: planted links, linked trees, a hung write.

``sudo`` is a stand-in on ``PATH`` that runs its command (the tests run as
root, so the command runs as root exactly as through the real sudo); the
real ``sudo`` with an unprivileged user is in ``test_sudo_as_a_user.py``.
The old writer wrote ``tee .NAME.kumotui-tmp`` then ``chmod`` and ``mv``
through that name: a link planted there sent root's write anywhere.
"""

from __future__ import annotations

import errno
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from kumotui.errors import KumotuiError
from kumotui.hosts.local import LocalHost
from kumotui.tuning.privilege import SudoWriter, sudo_command
from tests.support.trees import MODERN_KERNEL, make_tree

DECOY = "DECOY: root must never write this\n"
TEXT = "# drop-in\nvm.max_map_count = 768000\n"

FAKE_SUDO = """#!/bin/sh
# A stand-in for sudo: drop its options, run the command as we are (root in these tests).
while [ "$1" = "-n" ] || [ "$1" = "--" ]; do shift; done
exec "$@"
"""

REFUSING_SUDO = """#!/bin/sh
echo "sudo: a password is required" >&2
exit 1
"""


def install(bin_dir: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(script)
    (bin_dir / "sudo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/local/bin:/usr/bin:/bin")


@pytest.fixture
def fake_sudo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SudoWriter:
    install(tmp_path / "bin", FAKE_SUDO, monkeypatch)
    return SudoWriter(LocalHost())


def test_a_link_planted_at_the_old_temp_name_does_not_redirect_the_write(fake_sudo: SudoWriter, tmp_path: Path) -> None:
    dropin_dir = tmp_path / "sysctl.d"
    dropin_dir.mkdir()
    decoy = tmp_path / "decoy"
    decoy.write_text(DECOY)
    (dropin_dir / ".90-kumomta.conf.kumotui-tmp").symlink_to(decoy)
    fake_sudo.replace_file(dropin_dir / "90-kumomta.conf", TEXT, 0o644)
    assert decoy.read_text() == DECOY
    dropin = dropin_dir / "90-kumomta.conf"
    assert dropin.read_text() == TEXT and not dropin.is_symlink()
    assert stat.S_IMODE(dropin.stat().st_mode) == 0o644
    assert sorted(p.name for p in dropin_dir.iterdir()) == [".90-kumomta.conf.kumotui-tmp", "90-kumomta.conf"]


def test_a_linked_drop_in_is_refused_through_sudo(fake_sudo: SudoWriter, tmp_path: Path) -> None:
    decoy = tmp_path / "decoy"
    decoy.write_text(DECOY)
    (tmp_path / "sysctl.d").mkdir()
    (tmp_path / "sysctl.d" / "90-kumomta.conf").symlink_to(decoy)
    for write in (
        lambda: fake_sudo.replace_file(tmp_path / "sysctl.d" / "90-kumomta.conf", TEXT, 0o644),
        lambda: fake_sudo.remove_file(tmp_path / "sysctl.d" / "90-kumomta.conf"),
    ):
        with pytest.raises(KumotuiError, match="is a symbolic link"):
            write()
    assert decoy.read_text() == DECOY and (tmp_path / "sysctl.d" / "90-kumomta.conf").is_symlink()


def test_a_directory_others_may_write_is_refused_through_sudo(fake_sudo: SudoWriter, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(KumotuiError, match=r"writable by its group or others \(mode 0777\)"):
        fake_sudo.replace_file(shared / "90-kumomta.conf", TEXT, 0o644)
    assert list(shared.iterdir()) == []


def test_values_go_beneath_the_root_through_sudo(fake_sudo: SudoWriter, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", MODERN_KERNEL)
    fake_sudo.write_value(tree, "vm/max_map_count", "768000\n")
    assert (tree / "vm" / "max_map_count").read_text() == "768000\n"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "somaxconn").write_text(DECOY)
    shutil.rmtree(tree / "net" / "core")  # refuses a link: never deletes through one
    (tree / "net" / "core").symlink_to(outside)
    with pytest.raises(OSError) as refused:
        fake_sudo.write_value(tree, "net/core/somaxconn", "1\n")
    assert refused.value.errno == errno.ELOOP
    with pytest.raises(OSError) as escaped:
        fake_sudo.write_value(tree, "vm/../../outside/somaxconn", "1\n")
    assert escaped.value.errno == errno.EXDEV
    assert (outside / "somaxconn").read_text() == DECOY


def test_the_root_process_stops_itself_at_its_deadline(fake_sudo: SudoWriter) -> None:
    """A write that never finishes must not leave a root process behind: the agent's own alarm ends it."""
    start = time.monotonic()
    with subprocess.Popen(sudo_command(timeout=1), stdin=subprocess.PIPE, stdout=subprocess.PIPE) as agent:
        assert agent.wait(timeout=10) == -signal.SIGALRM  # no request ever came: SIGALRM after 1 s
    assert time.monotonic() - start < 5


def test_a_refusing_sudo_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path / "bin", REFUSING_SUDO, monkeypatch)
    with pytest.raises(
        KumotuiError,
        match=re.escape("sudo -n python3 (kumotui's writer) failed on local: sudo: a password is required"),
    ):
        SudoWriter(LocalHost()).replace_file(tmp_path / "x.conf", TEXT, 0o644)
    assert not (tmp_path / "x.conf").exists()
