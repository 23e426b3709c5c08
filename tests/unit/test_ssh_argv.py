"""Every ssh command line kumotui builds ends ssh's options with ``--`` before the destination.

The second lock behind :class:`HostSpec` refusing hosts that begin with ``-``:
here a spec is made directly (as a bug elsewhere might), with ``-Fevil`` as
host and user, and a stand-in ``ssh`` on PATH records every command line it
is given: plumbum's session, the diagnosis after a failure, ``ssh -G`` for
the address, and the benchmark launcher's command.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plumbum import local

from kumotui.errors import KumotuiError
from kumotui.hosts import Completed
from kumotui.hosts.address import HostSpec
from kumotui.hosts.launch import SshLauncher
from kumotui.hosts.remote import RemoteHost

HOSTILE = HostSpec("-Fevil", user="-Fevil")


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Path]:
    """A stand-in ``ssh`` first on plumbum's PATH, writing each command line to a file and failing."""
    log = tmp_path / "argv.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done >> {log}\necho >> {log}\nexit 255\n'
    )
    (bin_dir / "ssh").chmod(0o755)
    with local.env(PATH=f"{bin_dir}:{local.env['PATH']}"):
        yield log


def command_lines(log: Path) -> list[list[str]]:
    return [line.strip("\0").split("\0") for line in log.read_text().splitlines() if line]


def test_remote_host_commands(recorded: Path) -> None:
    with pytest.raises(KumotuiError):
        RemoteHost(HOSTILE, connect_timeout=3)
    lines = command_lines(recorded)
    assert len(lines) == 2  # plumbum's session, then the diagnosis
    session, diagnosis = lines
    assert session[session.index("--") + 1] == "-Fevil@-Fevil"
    assert diagnosis[diagnosis.index("--") + 1] == "-Fevil" and diagnosis[diagnosis.index("-l") + 1] == "-Fevil"
    for argv in lines:
        assert "-Fevil" not in argv[: argv.index("--")] or argv[argv.index("-Fevil") - 1] == "-l"


def test_ssh_dash_g_for_the_address(recorded: Path) -> None:
    host = RemoteHost.__new__(RemoteHost)  # the address lookup alone, no connection
    host.spec, host._address, host.connect_timeout = HOSTILE, None, 3.0
    assert host.address == "-Fevil"  # ssh failed: the name as given
    (argv,) = command_lines(recorded)
    assert argv[-3:] == ["-G", "--", "-Fevil"]


class FakeHost:
    """Just enough of a RemoteHost for the launcher to build a command."""

    spec = HOSTILE
    name = "-Fevil"
    connect_timeout = 3.0

    class python:
        executable = "/usr/bin/python3"

    def on_close(self, callback: object) -> None:
        pass

    def run(self, args: list[str], stdin: str | None = None) -> Completed:
        return Completed(0, "/tmp/kumotui-engines-abcdefgh\n", "")

    def replace_file(self, path: Path, text: str, mode: int = 0o644) -> None:
        pass


def test_launcher_command() -> None:
    launcher = SshLauncher(FakeHost())  # type: ignore[arg-type]
    argv = launcher.wrap([*launcher.engine("smtp_sink"), "--listen", "127.0.0.1:0"])
    assert argv[0] == "ssh" and argv[-3:-1] == ["--", "-Fevil"]
    assert argv[argv.index("-l") + 1] == "-Fevil"
    assert "/tmp/kumotui-engines-abcdefgh/watchdog.py --remove-dir /tmp/kumotui-engines-abcdefgh --" in argv[-1]
