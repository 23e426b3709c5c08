"""Who may write: root directly, a user through ``sudo -n``, or nobody.

As root kumotui writes files itself. Otherwise it tries ``sudo -n`` (never
prompting: a TUI or a script cannot answer a password prompt), passing the
value on stdin to ``tee`` so it is data, never part of a command line a
shell could read. Otherwise it is read-only and shows commands to run.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kumotui.errors import KumotuiError
from kumotui.hosts import Host

if TYPE_CHECKING:
    from kumotui.tuning.target import Target


class Privilege(enum.StrEnum):
    """How kumotui may write on a host."""

    ROOT = "root"
    DIRECT = "direct"
    """Not root, but the (simulated) tree and drop-in dir are writable."""
    SUDO = "sudo"
    READ_ONLY = "read-only"


class Writer(Protocol):
    """The three writes apply and rollback need."""

    def write_value(self, path: Path, text: str) -> None:
        """Write a /proc/sys value; OSError or KumotuiError when refused."""
        ...

    def replace_file(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Atomically replace a file."""
        ...

    def remove_file(self, path: Path) -> None:
        """Remove a file if present."""
        ...


def detect_privilege(target: Target) -> Privilege:
    """Decide how to write on the target host, without writing anything."""
    host = target.host
    if target.read_only:
        return Privilege.READ_ONLY
    if host.is_root():
        return Privilege.ROOT
    if target.tree.simulated and host.writable(target.tree.root) and host.writable(target.dropin.parent):
        return Privilege.DIRECT
    if host.run(["sudo", "-n", "true"]).code == 0:
        return Privilege.SUDO
    return Privilege.READ_ONLY


def writer_for(privilege: Privilege, host: Host) -> Writer:
    """The writer for a privilege; read-only refuses with a clear message."""
    if privilege is Privilege.SUDO:
        return SudoWriter(host)
    if privilege is Privilege.READ_ONLY:
        raise KumotuiError(
            "read-only: not root and `sudo -n` is not allowed; "
            "run the commands shown with --dry-run yourself, or re-run as root"
        )
    return host


class SudoWriter:
    """Writes through ``sudo -n`` with argument lists; values go on stdin."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def _sudo(self, args: list[str], stdin: str | None = None) -> None:
        done = self.host.run(["sudo", "-n", *args], stdin=stdin)
        if done.code != 0:
            reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.code}"
            raise KumotuiError(f"sudo {args[0]} failed: {reason}")

    def write_value(self, path: Path, text: str) -> None:
        """``sudo -n tee PATH`` with the value on stdin."""
        self._sudo(["tee", str(path)], stdin=text)

    def replace_file(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Temp file beside the target, then an atomic ``mv``."""
        tmp = path.parent / f".{path.name}.kumotui-tmp"
        self._sudo(["mkdir", "-p", str(path.parent)])
        self._sudo(["tee", str(tmp)], stdin=text)
        self._sudo(["chmod", f"{mode:o}", str(tmp)])
        self._sudo(["sync", str(tmp)])
        self._sudo(["mv", "-f", str(tmp), str(path)])

    def remove_file(self, path: Path) -> None:
        """``sudo -n rm -f PATH``."""
        self._sudo(["rm", "-f", str(path)])
