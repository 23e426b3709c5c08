"""What apply and rollback touch on one host: its sysctl tree, drop-in, system root and journal.

A value object both :mod:`~kumotui.tuning.privilege` and
:mod:`~kumotui.tuning.apply` need; it lives here so neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.hosts import Host, ManagedFile
from kumotui.hosts.local import LocalHost
from kumotui.paths import DROP_IN_NAME
from kumotui.settings import Settings, local_now
from kumotui.tuning.journal import Journal
from kumotui.tuning.sysctl import SysctlTree


@dataclass(frozen=True)
class Target:
    """Everything apply and rollback touch on one host."""

    tree: SysctlTree
    dropin: Path
    system_root: Path
    journal: Journal
    read_only: bool = False
    """The user asked never to write (``--read-only``)."""
    clock: Callable[[], datetime] = local_now
    """What "now" is for journal entries and the drop-in's header."""

    @classmethod
    def from_settings(cls, settings: Settings, host: Host | None = None) -> Target:
        """Build the target the settings describe (local host by default).

        Raises:
            RefusedPath: the state dir or its journal belongs to someone else
                or others may write to it (a planted entry would be restored
                as root): the message says how to fix it.
        """
        host = host or LocalHost()
        state_dir = settings.state_dir or host.default_state_dir()
        for directory in (state_dir, state_dir / "journal"):
            host.check_private_dir(directory)
        return cls(
            tree=SysctlTree(settings.sysctl_root, host),
            dropin=settings.sysctl_d / DROP_IN_NAME,
            system_root=settings.system_root,
            journal=Journal(host, state_dir),
            read_only=settings.read_only,
            clock=settings.clock,
        )

    @property
    def host(self) -> Host:
        """The machine being changed."""
        return self.tree.host

    def read_dropin(self) -> ManagedFile | None:
        """The drop-in's current text and mode, or None when there is none; a link is refused."""
        return read_managed(self.host, self.dropin)


def read_file(host: Host, path: Path) -> str | None:
    """The text of a file kumotui manages, or None when it does not exist (see :func:`read_managed`)."""
    found = read_managed(host, path)
    return found.text if found is not None else None


def read_managed(host: Host, path: Path) -> ManagedFile | None:
    """A file kumotui replaces (a drop-in) on a host: text and mode, or None when it does not exist.

    Raises:
        RefusedPath: it is a symbolic link (kumotui never writes through one).
        KumotuiError: it cannot be read.
    """
    try:
        return host.read_managed(path)
    except OSError as error:
        raise KumotuiError(f"cannot read {path}: {error.strerror}") from None
