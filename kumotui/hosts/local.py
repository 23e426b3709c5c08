"""This machine as a :class:`~kumotui.hosts.Host`, and the one atomic file write."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psutil

from kumotui.hosts import Completed, HostFacts
from kumotui.paths import default_state_dir


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so a reader (or a crash) sees the old file or the new, never half.

    A temp file in the same directory, fsynced, renamed over the target, and
    the directory fsynced so the rename itself survives a crash. The one
    atomic write of kumotui's own files (journal, run records, config, guide
    progress, reports); the remote agent has its own, being stdlib-only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalHost:
    """This machine."""

    name = "local"

    def read_text(self, path: Path) -> str:
        """A file's text; raises OSError like :func:`open`."""
        return path.read_text(encoding="utf-8", errors="replace")

    def write_value(self, path: Path, text: str) -> None:
        """Write in a single ``write(2)`` so the kernel's errno reaches us."""
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def replace_file(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Atomically replace a file (see :func:`atomic_write`)."""
        atomic_write(path, text, mode)

    def remove_file(self, path: Path) -> None:
        """Remove a file; a missing file is not an error."""
        path.unlink(missing_ok=True)

    def list_dir(self, path: Path) -> list[str]:
        """Names in a directory; raises OSError when it cannot be listed."""
        return sorted(os.listdir(path))

    def run(self, args: Sequence[str], stdin: str | None = None) -> Completed:
        """Run a command from an argument list (never a shell string)."""
        try:
            done = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=60, check=False)
        except FileNotFoundError:
            return Completed(127, "", f"{args[0]}: command not found")
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
