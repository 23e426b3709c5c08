"""Who may write: root directly, a user through ``sudo -n``, or nobody.

As root kumotui writes files itself. Otherwise it tries ``sudo -n`` (never
prompting: a TUI or a script cannot answer a password prompt). Each write
through sudo is one run of kumotui's own stdlib agent as root, answering one
request that arrives on stdin: the same beneath-the-root, no-link,
``O_EXCL``-temp-file rules as every other write, no file name anyone else
could plant in advance (``tee`` to a fixed temp name, then ``chmod`` and
``mv`` through it, could be redirected by a link), and a deadline. Values
and file content are data on stdin, never part of a command line.
Otherwise it is read-only and shows commands to run.
"""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kumotui.errors import KumotuiError
from kumotui.hosts import Host, agent

if TYPE_CHECKING:
    from kumotui.tuning.target import Target

SUDO_TIMEOUT = 30
"""Seconds one ``sudo -n`` write may take before its root process stops itself."""


class Privilege(enum.StrEnum):
    """How kumotui may write on a host."""

    ROOT = "root"
    DIRECT = "direct"
    """Not root, but the (simulated) tree and drop-in dir are writable."""
    SUDO = "sudo"
    READ_ONLY = "read-only"


class Writer(Protocol):
    """The three writes apply and rollback need."""

    def write_value(self, root: Path, relative: str, text: str) -> None:
        """Write an existing kernel parameter beneath ``root``; OSError or KumotuiError when refused."""
        ...

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Atomically replace a file (never through a link)."""
        ...

    def remove_file(self, path: Path) -> None:
        """Remove a file if present (never a link)."""
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


def sudo_command(timeout: int = SUDO_TIMEOUT) -> list[str]:
    """``sudo -n python3 -I -c AGENT --once SECONDS``: one request, as root, with its own deadline.

    ``-I`` keeps the root interpreter away from the caller's environment and
    site-packages; the request arrives on stdin.
    """
    return ["sudo", "-n", "--", "python3", "-I", "-c", agent_source(), "--once", str(timeout)]


def agent_source() -> str:
    """The agent's source, as sent to ``python3 -c``."""
    return Path(agent.__file__).read_text(encoding="utf-8")


class SudoWriter:
    """Writes through ``sudo -n``: each write is one request to kumotui's agent running as root."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def _request(self, op: str, **fields: Any) -> None:
        """Send one request through sudo; the agent's refusal or the kernel's errno comes back."""
        done = self.host.run(sudo_command(), stdin=json.dumps({"op": op, **fields}) + "\n")
        reply = _last_json(done.stdout)
        if reply is None:
            stderr = done.stderr.strip()
            reason = stderr.splitlines()[-1] if stderr else f"exit {done.code}"
            if done.code in (-14, 128 + 14):  # SIGALRM: the agent's own deadline
                reason = f"no answer within {SUDO_TIMEOUT} s; stopped"
            raise KumotuiError(f"sudo -n python3 (kumotui's writer) failed on {self.host.name}: {reason}")
        if reply.get("ok"):
            return
        code = reply.get("errno")
        if isinstance(code, int):
            raise OSError(code, str(reply.get("error") or os.strerror(code)))
        raise KumotuiError(str(reply.get("error")))

    def write_value(self, root: Path, relative: str, text: str) -> None:
        """Write a kernel parameter beneath ``root`` as root; the kernel's errno comes back as OSError."""
        self._request("write_beneath", root=str(root), relative=relative, text=text)

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Atomically replace ``path`` as root: ``O_EXCL`` temp file, fsync, rename; a link is refused."""
        self._request("replace_file", path=str(path), text=text, mode=mode)

    def remove_file(self, path: Path) -> None:
        """Remove ``path`` as root if present; a link is refused."""
        self._request("remove", path=str(path))


def _last_json(stdout: str) -> dict[str, Any] | None:
    """The agent's reply: the last line of its output, when it is a JSON object."""
    lines = stdout.strip().splitlines()
    if len(lines) < 2:
        return None
    try:
        reply = json.loads(lines[-1])
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None
