"""The machine kumotui inspects and changes.

Everything above this module (sysctl access, findings, apply, benchmark jobs)
talks to a :class:`Host`, so the same code serves the local machine and, over
SSH, a remote one. Commands are argument lists, never shell text.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil


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


class LocalHost:
    """This machine."""

    name = "local"

    def read_text(self, path: Path) -> str:
        """A file's text; raises OSError like :func:`open`."""
        return path.read_text(encoding="utf-8", errors="replace")

    def facts(self) -> HostFacts:
        """Hostname, kernel release, CPU count and memory of this machine."""
        return HostFacts(
            hostname=socket.gethostname(),
            kernel=platform.release(),
            cpus=os.cpu_count() or 1,
            memory_bytes=psutil.virtual_memory().total,
        )
