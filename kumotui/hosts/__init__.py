"""The machine kumotui inspects and changes.

Everything above this module (sysctl access, findings, apply, benchmark jobs)
talks to a :class:`Host`, so the same code serves the local machine and, over
SSH, a remote one. Commands are argument lists, never shell text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kumotui.errors import KumotuiError


class RefusedPath(KumotuiError):
    """A file or directory kumotui must not touch: a link, or a directory others could change.

    The message names the path, the problem and the fix.
    """


@dataclass(frozen=True)
class ManagedFile:
    """A file kumotui replaces and may restore (a drop-in): its text and permission bits."""

    text: str
    mode: int


@dataclass(frozen=True)
class HostFacts:
    """What the header and run records say about a machine."""

    hostname: str
    kernel: str
    cpus: int
    memory_bytes: int

    def as_dict(self) -> dict[str, str | int]:
        """The JSON shape used by ``check --json`` and run records."""
        return {
            "hostname": self.hostname,
            "kernel": self.kernel,
            "cpus": self.cpus,
            "memory_bytes": self.memory_bytes,
        }


class Host(Protocol):
    """File and fact access on one machine."""

    name: str
    """How the user named the host (``local`` for this machine)."""

    def read_text(self, path: Path) -> str:
        """A file's text; raises OSError like :func:`open`."""
        ...

    def facts(self) -> HostFacts:
        """Hostname, kernel release, CPU count and memory."""
        ...

    def read_value(self, root: Path, relative: str) -> str:
        """A kernel parameter's text from ``root/relative``, opened beneath ``root``.

        Never follows a symbolic link below ``root`` (ELOOP), never leaves it
        (EXDEV), reads only a regular file; raises OSError like :func:`open`.
        """
        ...

    def write_value(self, root: Path, relative: str, text: str) -> None:
        """Write ``text`` to an existing parameter beneath ``root`` in one write (a /proc/sys value).

        Opened like :meth:`read_value`, never created. Raises OSError with the
        kernel's errno when it refuses the value.
        """
        ...

    def read_managed(self, path: Path) -> ManagedFile | None:
        """A file kumotui replaces (a drop-in): None when absent; :class:`RefusedPath` when a link."""
        ...

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Atomically replace a file: ``O_EXCL`` temp file in the same dir, fsync, rename.

        Raises :class:`RefusedPath` when the target is a link or its directory
        could be changed by someone else.
        """
        ...

    def remove_file(self, path: Path) -> None:
        """Remove a file; a missing file is not an error, a link is refused (:class:`RefusedPath`)."""
        ...

    def check_private_dir(self, path: Path) -> None:
        """Raise :class:`RefusedPath` when a directory kumotui keeps files in (state, journal, config)
        belongs to someone else or others may write to it; a missing one is fine."""
        ...

    def list_dir(self, path: Path) -> list[str]:
        """Names in a directory; raises OSError when it cannot be listed."""
        ...

    def run(self, args: Sequence[str], stdin: str | None = None) -> Completed:
        """Run a command from an argument list (never a shell string)."""
        ...

    def is_root(self) -> bool:
        """Whether kumotui runs as root there."""
        ...

    def writable(self, path: Path) -> bool:
        """Whether ``path`` (or the nearest existing parent) is writable."""
        ...

    def default_state_dir(self) -> Path:
        """Where the journal and run records live by default on this host."""
        ...

    def close(self) -> None:
        """Release connections (nothing to do locally)."""
        ...


@dataclass(frozen=True)
class Completed:
    """What a finished command returned."""

    code: int
    stdout: str
    stderr: str
