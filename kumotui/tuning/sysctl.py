"""Reading kernel parameters from ``/proc/sys`` or a simulated tree.

A simulated tree (``--sysctl-root DIR``) is laid out like ``/proc/sys``:
``net.core.somaxconn`` lives at ``DIR/net/core/somaxconn``. Key/path mapping
follows procps: '.' separates components, and a '/' in a key stands for a
'.' inside a component (``net.ipv4.conf.eth0/100.rp_filter`` is
``net/ipv4/conf/eth0.100/rp_filter``).

A key is a name, never a path: :func:`key_to_relpath` refuses any key whose
translation has an empty, ``.`` or ``..`` component (``a.//.b`` would be
``a/../b``), and every read and write opens the file *beneath* the root,
one component at a time, never through a symbolic link
(:meth:`kumotui.hosts.Host.read_value`).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kumotui.errors import KumotuiError
from kumotui.hosts import Host, HostFacts
from kumotui.hosts.local import LocalHost
from kumotui.paths import DEFAULT_SYSCTL_ROOT

_SWAP = str.maketrans("./", "/.")


class KeyNameError(KumotuiError):
    """A key that is not a sysctl name and would name a path outside the tree."""


def key_to_relpath(key: str) -> str:
    """``net.ipv4.conf.eth0/100.rp_filter`` -> ``net/ipv4/conf/eth0.100/rp_filter``.

    Raises:
        KeyNameError: a component is empty or only dots after translation
            (``kernel.//.//.etc`` would be ``kernel/../../etc``).
    """
    relpath = key.translate(_SWAP)
    for part in relpath.split("/"):
        if not part or set(part) == {"."} or "\0" in part:
            shown = key.encode("unicode_escape").decode("ascii")
            raise KeyNameError(
                f"'{shown}' is not a sysctl name: its component '{part.translate(_SWAP)}' would make the "
                "path leave the parameter tree; a key is dot-separated names such as net.core.somaxconn"
            )
    return relpath


class ValueWriter(Protocol):
    """Whatever writes kernel values: a host, or a ``sudo -n`` writer for it."""

    def write_value(self, root: Path, relative: str, text: str) -> None:
        """Write an existing parameter beneath ``root``."""
        ...


@dataclass(frozen=True)
class Reading:
    """One parameter as read from the kernel (or the simulated tree)."""

    key: str
    value: str | None
    """The text exactly as read, minus the trailing newline; None if not read."""
    error: str | None = None
    """Why it could not be read: ``missing`` or a reason in words."""

    @property
    def missing(self) -> bool:
        """The kernel has no such parameter."""
        return self.error == "missing"


def describe_errno(code: int | None) -> str:
    """A kernel error in words a user understands."""
    meanings = {
        errno.EINVAL: "the kernel rejected the value as invalid (EINVAL)",
        errno.EPERM: "not permitted (EPERM): needs root, or the parameter is read-only here",
        errno.EACCES: "permission denied (EACCES): needs root",
        errno.ENOENT: "no such parameter on this kernel (ENOENT)",
        errno.EROFS: "read-only file system (EROFS)",
        errno.ERANGE: "value out of range (ERANGE)",
        errno.EBUSY: "the parameter is busy (EBUSY)",
        errno.ELOOP: "refused: a symbolic link in the tree; kumotui never follows links there (ELOOP)",
        errno.EXDEV: "refused: the path would leave the parameter tree (EXDEV)",
        errno.ENOTSUP: "refused: not a regular file (a device, FIFO or socket; ENOTSUP)",
        errno.EMLINK: "refused: a hard link to another file (EMLINK)",
        errno.EFBIG: "refused: far too large for a kernel value (EFBIG)",
    }
    if code in meanings:
        return meanings[code]
    if code is None:
        return "unknown error"
    return f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"


class SysctlTree:
    """Kernel parameters under a root directory (``/proc/sys`` by default)."""

    def __init__(self, root: Path = DEFAULT_SYSCTL_ROOT, host: Host | None = None) -> None:
        self.root = root
        self.host: Host = host or LocalHost()

    @property
    def simulated(self) -> bool:
        """Whether this is a directory tree standing in for ``/proc/sys``."""
        return self.root != DEFAULT_SYSCTL_ROOT

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (for messages and commands; reads and writes go beneath the root)."""
        return self.root / key_to_relpath(key)

    def write(self, writer: ValueWriter, key: str, text: str) -> None:
        """Write ``text`` to ``key`` through ``writer``, beneath the root (never created, no link followed).

        Raises:
            KeyNameError: ``key`` is not a sysctl name.
            OSError: the kernel (or the tree) refused, with its errno.
        """
        writer.write_value(self.root, key_to_relpath(key), text)

    def require_readable(self) -> None:
        """Fail clearly when the root itself cannot be listed (wrong path,
        no /proc mounted, a remote without access) instead of calling every
        parameter missing."""
        try:
            self.host.list_dir(self.root)
        except OSError as error:
            raise KumotuiError(f"{self.host.name}: cannot read {self.root}: {error.strerror}") from None

    def read(self, key: str) -> Reading:
        """Read one parameter; never raises for an expected failure."""
        try:
            text = self.host.read_value(self.root, key_to_relpath(key))
        except KeyNameError as error:
            return Reading(key, None, str(error))
        except FileNotFoundError:
            return Reading(key, None, "missing")
        except IsADirectoryError:
            return Reading(key, None, "missing")
        except OSError as error:
            return Reading(key, None, describe_errno(error.errno))
        return Reading(key, text.rstrip("\n"))

    def facts(self) -> HostFacts:
        """The host's facts; a simulated tree may name its own host.

        ``kernel.hostname`` and ``kernel.osrelease`` are real sysctl keys, so
        a simulated tree that carries them describes a believable machine
        (deterministic screenshots, tests) instead of the one running us.
        """
        facts = self.host.facts()
        if not self.simulated:
            return facts
        hostname = self.read("kernel.hostname").value or facts.hostname
        kernel = self.read("kernel.osrelease").value or facts.kernel
        return HostFacts(hostname.strip(), kernel.strip(), facts.cpus, facts.memory_bytes)

    def read_many(self, keys: list[str]) -> dict[str, Reading]:
        """Read several parameters."""
        return {key: self.read(key) for key in keys}
