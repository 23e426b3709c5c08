"""One apply at a time: a lock in the state dir, on the host being changed.

``apply``, ``rollback``, ``limits --apply`` and the app's apply and rollback
hold an exclusive :func:`fcntl.flock` on ``STATE_DIR/apply.lock`` from the
moment they check their plan against the host until the journal says how it
ended. The lock lives where the journal lives, on the changed host: for a
remote host kumotui's agent there takes and holds it, so two operators on
two machines cannot interleave either. The kernel drops a flock when its
holder dies (a kill, a dropped SSH session ends the agent), so a crash never
leaves a stale lock behind; the file itself stays, holding the last
holder's description, and is never removed (removing a lock file lets two
processes lock two different files).

A second apply waits :data:`WAIT` seconds, then refuses with who holds the
lock: pid, command, since when, from which machine.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kumotui.errors import KumotuiError
from kumotui.hosts import Host
from kumotui.hosts.local import LocalHost

LOCK_NAME = "apply.lock"
WAIT = 5.0
"""Seconds a second apply waits for the lock before it refuses."""
_POLL = 0.1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a lock, as its holder described itself."""

    pid: int | None
    command: str
    since: str
    host: str
    """The machine the holding kumotui runs on (not necessarily the locked one)."""
    user: str = ""

    def __str__(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        where = f" on {self.host}" + (f" as {self.user}" if self.user else "") if self.host else ""
        return f"{who} ({self.command}){where} since {self.since}"

    def as_json(self) -> dict[str, Any]:
        """What the lock file holds."""
        return {"pid": self.pid, "command": self.command, "since": self.since, "host": self.host, "user": self.user}

    @classmethod
    def parse(cls, text: str | None) -> Holder | None:
        """A lock file's description, read defensively (anyone who held it wrote it)."""
        try:
            data = json.loads(text or "")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        return cls(
            pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            _clean(data.get("command")),
            _clean(data.get("since")),
            _clean(data.get("host")),
            _clean(data.get("user")),
        )


class LockBusy(KumotuiError):
    """Another kumotui is applying or rolling back on this host."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


def _clean(value: object) -> str:
    """A field of someone else's lock file as safe one-line text."""
    text = value if isinstance(value, str) else "?"
    return _CONTROL.sub("?", text)[:200]


def this_command() -> str:
    """How this process was started, for the lock file (``kumotui apply --yes``)."""
    args = " ".join(sys.argv[1:])
    return _clean(f"kumotui {args}".strip())


def lock_path(state_dir: Path) -> Path:
    """The lock file of a state dir."""
    return state_dir / LOCK_NAME


@dataclass
class _Held:
    """A lock this process holds: by which thread, how deeply nested, through what."""

    thread: int
    depth: int
    handle: _Handle
    holder: Holder


# One flock per open file description: this process must not lock the same
# file twice (it would wait for itself), so nested holds by the same thread
# only count, and another thread of this process waits like another process.
_held: dict[tuple[str, str], _Held] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def hold(
    host: Host, state_dir: Path, *, command: str | None = None, wait: float = WAIT, what: str | None = None
) -> Iterator[Holder]:
    """Hold the apply lock of ``state_dir`` on ``host`` for the ``with`` block.

    Args:
        host: the host being changed (its journal, and so its lock, live there).
        state_dir: the journal's state dir.
        command: how the holder describes itself (default: this process's command line).
        wait: seconds to wait for another holder to finish.
        what: the host's name in messages (default: ``host.name``).

    Raises:
        LockBusy: still held by someone else after ``wait`` seconds; the
            message names the holder.
        KumotuiError: the lock file cannot be created (a read-only state dir...).
    """
    key = (host.name, str(state_dir))
    me = threading.get_ident()
    deadline = time.monotonic() + wait
    while True:
        with _held_guard:
            current = _held.get(key)
            if current is None:
                break
            if current.thread == me:
                current.depth += 1
                break
        if time.monotonic() >= deadline:
            raise _busy(host, state_dir, current.holder, what, wait)
        time.sleep(_POLL)
    if current is not None:  # nested in this thread: the outer hold releases
        try:
            yield current.holder
        finally:
            with _held_guard:
                current.depth -= 1
        return

    since = datetime.now().astimezone().isoformat(timespec="seconds")
    holder = Holder(os.getpid(), command or this_command(), since, socket.gethostname(), _user())
    handle = _open_handle(host, state_dir)
    try:
        while True:
            busy = handle.try_lock(holder)
            if busy is None:
                break
            if time.monotonic() >= deadline:
                raise _busy(host, state_dir, busy, what, wait)
            time.sleep(_POLL)
    except BaseException:
        handle.close()
        raise
    with _held_guard:
        _held[key] = _Held(me, 1, handle, holder)
    try:
        yield holder
    finally:
        with _held_guard:
            del _held[key]
        handle.close()


def holder_now(host: Host, state_dir: Path) -> Holder | None:
    """Who holds the lock right now (None when nobody does), without taking it or creating anything."""
    with _held_guard:
        current = _held.get((host.name, str(state_dir)))
    if current is not None:
        return current.holder
    return _open_handle(host, state_dir).probe()


def _busy(host: Host, state_dir: Path, holder: Holder | None, what: str | None, waited: float) -> LockBusy:
    name = what or host.name
    who = str(holder) if holder else "another kumotui (it did not say who)"
    return LockBusy(
        f"another kumotui is changing {name}: {who} holds {lock_path(state_dir)}. "
        f"Waited {waited:g} s; try again when it has finished",
        holder,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())


class _Handle:
    """An open lock file: a local descriptor, or one the remote agent keeps."""

    def try_lock(self, holder: Holder) -> Holder | None:
        """Take the lock; None on success, else who holds it."""
        raise NotImplementedError

    def probe(self) -> Holder | None:
        """Who holds it now (never creates anything)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the lock (if held) and close the file."""


class _LocalHandle(_Handle):
    """``flock`` on this machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_lock(self, holder: Holder) -> Holder | None:
        if self.fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as error:
                raise KumotuiError(f"cannot create the lock {self.path}: {error.strerror or error}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder.parse(_read_fd(self.fd)) or Holder(None, "?", "?", "")
        with contextlib.suppress(OSError):  # a full disk: the lock holds, only its description is lost
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, (json.dumps(holder.as_json()) + "\n").encode(), 0)
        return None

    def probe(self) -> Holder | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # no lock file: nobody ever held it here
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return Holder.parse(_read_fd(fd)) or Holder(None, "?", "?", "")
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = None


class _AgentHandle(_Handle):
    """``flock`` held by kumotui's agent on a remote host (released when the SSH session ends)."""

    def __init__(self, host: Any, path: Path) -> None:
        self.host = host
        self.path = path
        self.locked = False

    def try_lock(self, holder: Holder) -> Holder | None:
        try:
            reply = self.host.request("lock", path=str(self.path), info=json.dumps(holder.as_json()))
        except OSError as error:
            raise KumotuiError(f"{self.host.name}: cannot create the lock {self.path}: {error.strerror}") from None
        if reply.get("held") is True:
            self.locked = True
            return None
        return Holder.parse(reply.get("holder") if isinstance(reply.get("holder"), str) else None) or Holder(
            None, "?", "?", ""
        )

    def probe(self) -> Holder | None:
        try:
            reply = self.host.request("lock_probe", path=str(self.path))
        except (OSError, KumotuiError):
            return None
        if reply.get("busy") is not True:
            return None
        return Holder.parse(reply.get("holder") if isinstance(reply.get("holder"), str) else None) or Holder(
            None, "?", "?", ""
        )

    def close(self) -> None:
        if self.locked:
            self.locked = False
            with contextlib.suppress(OSError, KumotuiError):  # a lost session released it already
                self.host.request("unlock", path=str(self.path))


def _open_handle(host: Host, state_dir: Path) -> _Handle:
    path = lock_path(state_dir)
    if isinstance(host, LocalHost):
        return _LocalHandle(path)
    if callable(getattr(host, "request", None)):
        return _AgentHandle(host, path)
    raise KumotuiError(f"{host.name}: kumotui cannot lock {path} on this kind of host")


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
    except OSError as error:
        if error.errno in (errno.EISDIR, errno.EINVAL):
            return ""
        raise
