"""What apply and rollback touch on one host: its sysctl tree, drop-in, system root and journal.

A value object both :mod:`~kumotui.tuning.privilege` and
:mod:`~kumotui.tuning.apply` need; it lives here so neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.hosts import Host
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
        """Build the target the settings describe (local host by default)."""
        host = host or LocalHost()
        return cls(
            tree=SysctlTree(settings.sysctl_root, host),
            dropin=settings.sysctl_d / DROP_IN_NAME,
            system_root=settings.system_root,
            journal=Journal(host, settings.state_dir or host.default_state_dir()),
            read_only=settings.read_only,
            clock=settings.clock,
        )

    @property
    def host(self) -> Host:
        """The machine being changed."""
        return self.tree.host

    def read_dropin(self) -> str | None:
        """The drop-in's current text, or None when there is none."""
        return read_file(self.host, self.dropin)


def read_file(host: Host, path: Path) -> str | None:
    """A file's text on a host, or None when it does not exist."""
    try:
        return host.read_text(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KumotuiError(f"cannot read {path}: {error.strerror}") from None
