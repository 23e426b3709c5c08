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

    def write_value(self, path: Path, text: str) -> None:
        """Write ``text`` to an existing file in one write (a /proc/sys value).

        Raises OSError with the kernel's errno when it refuses the value.
        """
        ...

    def replace_file(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Atomically replace a file: temp file in the same dir, fsync, rename."""
        ...

    def remove_file(self, path: Path) -> None:
        """Remove a file; a missing file is not an error."""
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
