"""This machine as a :class:`~kumotui.hosts.Host`, and the one atomic file write.

The file rules (beneath-root parameters, no links, ``O_EXCL`` temp files,
private directories) live once, in :mod:`kumotui.hosts.agent`, so this
machine, a remote host and a ``sudo -n`` write all follow the same ones.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

from kumotui.hosts import Completed, HostFacts, ManagedFile, RefusedPath, agent
from kumotui.paths import default_state_dir

RUN_TIMEOUT = 60
"""Seconds a local command may run before it is killed and reported."""

_T = TypeVar("_T")


def _refusing(action: Callable[[], _T]) -> _T:
    """Run one of the agent's file functions, its refusals as kumotui errors."""
    try:
        return action()
    except agent.Refused as error:
        raise RefusedPath(str(error)) from None


def atomic_write(path: Path, text: str, mode: int = 0o600, *, private: bool = True) -> None:
    """Replace ``path`` with ``text`` so a reader (or a crash) sees the old file or the new, never half.

    A fresh ``O_EXCL`` temp file in the same directory, fsynced, renamed over
    the target, the directory fsynced so the rename survives a crash; a
    target that is a symbolic link is refused. The one atomic write of
    kumotui's own files (journal, run records, config, guide progress,
    reports). ``private``: the directory must belong to this user (or root)
    and be writable by nobody else (missing ones are made 0700); False only
    for a report written where the user asked.

    Raises:
        RefusedPath: the target is a link, or the directory is not private.
        OSError: the write itself failed.
    """
    _refusing(lambda: agent.replace_file(str(path), text, mode, os.geteuid(), private))


def require_private_dir(path: Path) -> None:
    """Refuse (before reading or writing) a directory of kumotui's that others could change.

    Raises:
        RefusedPath: naming the directory, the problem and the fix.
    """
    _refusing(lambda: agent.check_private_dir(str(path), os.geteuid()))


class LocalHost:
    """This machine."""

    name = "local"

    def read_text(self, path: Path) -> str:
        """A file's text; raises OSError like :func:`open`."""
        return path.read_text(encoding="utf-8", errors="replace")

    def read_value(self, root: Path, relative: str) -> str:
        """A kernel parameter's text, opened beneath ``root`` without following links."""
        return agent.read_beneath(str(root), relative)

    def write_value(self, root: Path, relative: str, text: str) -> None:
        """Write an existing parameter beneath ``root`` in a single ``write(2)`` so the kernel's errno reaches us."""
        agent.write_beneath(str(root), relative, text)

    def read_managed(self, path: Path) -> ManagedFile | None:
        """A file kumotui replaces (a drop-in): text and mode, None when absent; a link is refused."""
        found = _refusing(lambda: agent.read_managed(str(path)))
        return None if found is None else ManagedFile(*found)

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Atomically replace a file (see :func:`atomic_write`)."""
        atomic_write(path, text, mode)

    def remove_file(self, path: Path) -> None:
        """Remove a file; a missing file is not an error, a link is refused."""
        _refusing(lambda: agent.remove_file(str(path), os.geteuid()))

    def check_private_dir(self, path: Path) -> None:
        """Refuse a state or config directory others could change (see :func:`require_private_dir`)."""
        require_private_dir(path)

    def list_dir(self, path: Path) -> list[str]:
        """Names in a directory; raises OSError when it cannot be listed."""
        return sorted(os.listdir(path))

    def run(self, args: Sequence[str], stdin: str | None = None) -> Completed:
        """Run a command from an argument list (never a shell string), killed after :data:`RUN_TIMEOUT`."""
        try:
            done = subprocess.run(
                list(args), input=stdin, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
            )
        except FileNotFoundError:
            return Completed(127, "", f"{args[0]}: command not found")
        except subprocess.TimeoutExpired:
            return Completed(124, "", f"{args[0]}: no answer after {RUN_TIMEOUT} s; stopped")
        return Completed(done.returncode, done.stdout, done.stderr)

    def is_root(self) -> bool:
        """Whether this process runs as root."""
        return os.geteuid() == 0

    def writable(self, path: Path) -> bool:
        """Whether ``path`` (or the nearest existing parent) is writable."""
        while not path.exists() and path != path.parent:
            path = path.parent
        return os.access(path, os.W_OK)

    def default_state_dir(self) -> Path:
        """``/var/lib/kumotui`` as root, else ``$XDG_STATE_HOME/kumotui``."""
        return default_state_dir()

    def close(self) -> None:
        """Nothing to release locally."""

    def facts(self) -> HostFacts:
        """Hostname, kernel release, CPU count and memory of this machine."""
        return HostFacts(
            hostname=socket.gethostname(),
            kernel=platform.release(),
            cpus=os.cpu_count() or 1,
            memory_bytes=psutil.virtual_memory().total,
        )
