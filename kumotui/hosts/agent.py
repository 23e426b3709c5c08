"""A tiny file and command agent kumotui runs on a remote host over SSH.

Stdlib only, so it runs on any host with Python 3 and no kumotui: its source
is sent as ``python3 -u -c SOURCE`` and then speaks one JSON object per line
on stdin/stdout. Argument lists stay lists end to end (``run`` uses
``subprocess`` without a shell), so values are data, never shell text. It
exits when stdin closes, i.e. when the SSH channel drops.

The same source answers exactly one request when started with ``--once
SECONDS`` (how ``sudo -n`` writes go: a fresh root process, killed by its own
alarm if it hangs), and this machine's :class:`~kumotui.hosts.local.LocalHost`
imports its file functions, so every place kumotui writes as root follows
one set of rules:

- a kernel parameter is opened *beneath* its tree's root, one component at a
  time with ``O_NOFOLLOW``, never created, and only when it is a regular file;
- a file kumotui replaces or removes is never a symbolic link, and a new one
  is a fresh ``O_EXCL`` temp file renamed into place;
- a directory kumotui keeps files in belongs to the running user (or root)
  and nobody else can write to it, nor swap any directory above it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pwd
import resource
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from typing import Any

Request = dict[str, Any]

MAX_FILE_BYTES = 1 << 20
"""Largest file read: kernel values are a few bytes, drop-ins and journal entries a few KB."""

_NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """A path kumotui must not touch; the message says why and how to fix it."""


# -- kernel parameters, beneath a root -------------------------------------


def relative_parts(relative: str) -> list[str]:
    """The components of a path inside a sysctl tree; refuses any that could leave it."""
    parts = relative.split("/")
    for part in parts:
        if not part or set(part) == {"."} or "\0" in part:
            raise OSError(errno.EXDEV, f"{relative!r} would leave the tree (component {part!r})")
    return parts


def open_beneath(root: str, relative: str, flags: int) -> int:
    """Open ``root/relative`` as a regular file without leaving ``root`` or following a link.

    Each directory is opened from the one before it with ``O_NOFOLLOW``, so a
    symbolic link anywhere below the root fails with ELOOP instead of
    leading elsewhere; the file is never created. The root itself is the
    user's choice and may be reached through links.
    """
    parts = relative_parts(relative)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in parts[:-1]:
        fd = _next_dir(fd, part)  # closes the one before, whatever happens
    try:
        leaf = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        _require_plain(os.fstat(leaf), relative)
    except BaseException:
        os.close(leaf)
        raise
    return leaf


def _next_dir(fd: int, name: str) -> int:
    """Open directory ``name`` under ``fd`` (closing ``fd``); a link is ELOOP."""
    try:
        child = os.open(name, _NOFOLLOW_DIR, dir_fd=fd)
    except NotADirectoryError:
        if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, "a symbolic link in the tree", name) from None
        raise
    finally:
        os.close(fd)
    return child


def _require_plain(info: os.stat_result, name: str) -> None:
    """Only a regular file with one name: never a device, FIFO, socket or a hard link to elsewhere."""
    if stat.S_ISDIR(info.st_mode):
        raise OSError(errno.EISDIR, "is a directory", name)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.ENOTSUP, "not a regular file", name)
    if info.st_nlink > 1:
        raise OSError(errno.EMLINK, "a hard link to another file", name)


def read_beneath(root: str, relative: str) -> str:
    """A parameter's text, read beneath ``root`` (see :func:`open_beneath`)."""
    fd = open_beneath(root, relative, os.O_RDONLY)
    try:
        return _read_capped(fd, relative)
    finally:
        os.close(fd)


def write_beneath(root: str, relative: str, text: str) -> None:
    """Write an existing parameter beneath ``root`` in one ``write(2)``, so the kernel's errno comes back.

    No ``O_TRUNC`` at open: only a file that passed the checks is emptied
    (a simulated tree's file; /proc/sys files have size 0).
    """
    fd = open_beneath(root, relative, os.O_WRONLY)
    try:
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read_capped(fd: int, name: str) -> str:
    """Read to the end, but refuse past :data:`MAX_FILE_BYTES`: a planted huge file must not exhaust memory."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode("utf-8", errors="replace")
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES} bytes", name)
        chunks.append(chunk)


# -- kumotui's own files and directories ----------------------------------


def dir_mode_for(mode: int) -> int:
    """A directory made for a file of ``mode``: 0700 for a private file, 0755 for one others read."""
    readable = mode & 0o044
    return 0o700 | readable | (readable >> 2)


def _who(uid: int) -> str:
    """A user's name for messages (the uid when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def dir_problem(path: str, info: os.stat_result, euid: int, *, strict: bool = True) -> str | None:
    """Why kumotui must not keep files in this directory, or None.

    It must belong to the running user or root, and nobody else may write to
    it. An ancestor (``strict=False``) may be world-writable only with the
    sticky bit (``/tmp``), where others cannot rename what is not theirs.
    """
    if info.st_uid not in (euid, 0):
        allowed = "root" if euid == 0 else f"{_who(euid)} or root"
        return (
            f"{path} belongs to {_who(info.st_uid)}, not to {allowed}, so its owner could replace "
            f"kumotui's files there. Fix: chown {_who(euid)} {path} (or choose another directory)"
        )
    writable_by_others = info.st_mode & 0o022
    if writable_by_others and (strict or not info.st_mode & stat.S_ISVTX):
        return (
            f"{path} is writable by its group or others (mode {stat.S_IMODE(info.st_mode):04o}), so they "
            f"could plant or replace kumotui's files there. Fix: chmod go-w {path} (or choose another directory)"
        )
    return None


def check_ancestors(path: str, euid: int) -> None:
    """Refuse when a directory above ``path`` lets someone else swap it."""
    current = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            problem = dir_problem(current, os.stat(current), euid, strict=False)
        except FileNotFoundError:
            problem = None  # not made yet: kumotui makes it private
        if problem:
            raise Refused(problem)
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def open_private_dir(path: str, euid: int, create_mode: int | None = None, strict: bool = True) -> int:
    """Open a directory kumotui keeps files in, creating what is missing with ``create_mode``.

    The checks run on the open descriptor, and every later step works
    through it, so the directory checked is the directory written.
    ``strict=False`` (a report the user asked to write to a path of their
    choice) skips the ownership checks but nothing else.
    """
    path = os.path.abspath(path)
    if strict:
        check_ancestors(path, euid)  # before making anything inside a directory others could swap
    if create_mode is not None:
        _make_dirs(path, create_mode)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if strict:
            problem = dir_problem(path, os.fstat(fd), euid)
            if problem:
                raise Refused(problem)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_dirs(path: str, mode: int) -> None:
    """Create the missing directories of ``path`` with exactly ``mode`` (not what the umask leaves)."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            continue  # made meanwhile by someone: the checks on the open descriptor decide
        fd = os.open(directory, _NOFOLLOW_DIR)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)


def check_private_dir(path: str, euid: int) -> None:
    """Refuse a directory kumotui keeps files in that others could change; a missing one is fine."""
    try:
        os.close(open_private_dir(path, euid))
    except FileNotFoundError:
        return  # its ancestors passed; kumotui makes it private when it first writes
    except OSError as error:
        raise Refused(f"cannot use {path}: {error.strerror}") from None


def _leaf_state(dir_fd: int, name: str, path: str) -> os.stat_result | None:
    """The file kumotui is about to replace or remove: None when absent; a link or a non-file is refused."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise Refused(
            f"{path} is a symbolic link; kumotui never writes through or replaces a link. "
            "Fix: replace it with a regular file (or remove it) and run kumotui again"
        )
    if not stat.S_ISREG(info.st_mode):
        raise Refused(f"{path} is not a regular file; kumotui refuses to replace or remove it")
    return info


def replace_file(path: str, text: str, mode: int, euid: int, strict: bool = True) -> None:
    """Replace ``path`` atomically: a fresh ``O_EXCL`` temp file beside it, fsynced, renamed over it.

    The temp name is random and created exclusively, so nothing planted in
    advance can redirect the write; a target that is a link is refused.
    Missing directories are made with :func:`dir_mode_for` ``(mode)``.
    """
    directory, name = os.path.split(os.path.abspath(path))
    dir_fd = open_private_dir(directory, euid, dir_mode_for(mode), strict)
    try:
        _leaf_state(dir_fd, name, path)
        tmp, fd = _exclusive_temp(dir_fd, name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _exclusive_temp(dir_fd: int, name: str) -> tuple[str, int]:
    """A new file under a random name, created exclusively (``O_EXCL``): nothing planted can stand in for it."""
    for _attempt in range(100):
        tmp = "." + name + "." + secrets.token_hex(8) + ".tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return tmp, os.open(tmp, flags, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "no free temporary name", name)


def remove_file(path: str, euid: int) -> None:
    """Remove a regular file kumotui manages; absent is fine, a link is refused."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        dir_fd = open_private_dir(directory, euid)
    except FileNotFoundError:
        return
    try:
        if _leaf_state(dir_fd, name, path) is not None:
            os.unlink(name, dir_fd=dir_fd)
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_managed(path: str) -> tuple[str, int] | None:
    """A file kumotui manages (a drop-in): its text and permission bits, None when absent; never a link."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if _leaf_state(dir_fd, name, path) is None:
            return None
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{path} is not a regular file; kumotui refuses to replace or remove it")
        return _read_capped(fd, path), stat.S_IMODE(info.st_mode)
    finally:
        os.close(fd)


# -- requests --------------------------------------------------------------


def _read(req: Request) -> Request:
    results: list = []  # type: ignore[type-arg]
    for path in req["paths"]:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                results.append({"text": handle.read(MAX_FILE_BYTES)})
        except OSError as error:
            results.append({"errno": error.errno, "error": error.strerror})
    return {"results": results}


def _read_beneath(req: Request) -> Request:
    results: list = []  # type: ignore[type-arg]
    for relative in req["relatives"]:
        try:
            results.append({"text": read_beneath(req["root"], relative)})
        except OSError as error:
            results.append({"errno": error.errno, "error": error.strerror})
    return {"results": results}


def _write_beneath(req: Request) -> Request:
    write_beneath(req["root"], req["relative"], req["text"])
    return {}


def _replace_file(req: Request) -> Request:
    replace_file(req["path"], req["text"], int(req.get("mode", 0o600)), os.geteuid(), bool(req.get("strict", True)))
    return {}


def _remove(req: Request) -> Request:
    remove_file(req["path"], os.geteuid())
    return {}


def _read_managed(req: Request) -> Request:
    found = read_managed(req["path"])
    return {"absent": True} if found is None else {"text": found[0], "mode": found[1]}


def _private_dir(req: Request) -> Request:
    check_private_dir(req["path"], os.geteuid())
    return {}


def _list_dir(req: Request) -> Request:
    return {"names": sorted(os.listdir(req["path"]))}


def _writable(req: Request) -> Request:
    path = req["path"]
    while not os.path.exists(path) and path not in ("", "/"):
        path = os.path.dirname(path)
    return {"writable": os.access(path, os.W_OK)}


def _run(req: Request) -> Request:
    try:
        done = subprocess.run(
            req["args"], input=req.get("stdin"), capture_output=True, text=True, timeout=req.get("timeout", 60)
        )
    except FileNotFoundError:
        return {"code": 127, "stdout": "", "stderr": req["args"][0] + ": command not found"}
    return {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


_LOCKS: dict[str, int] = {}
"""Apply locks this agent holds for kumotui (see kumotui.tuning.lock): path -> descriptor.
The kernel drops them when the agent exits, i.e. when the SSH session ends."""


def _lock(req: Request) -> Request:
    path = req["path"]
    if path in _LOCKS:
        return {"held": False, "holder": "{}"}
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
        os.close(fd)
        return {"held": False, "holder": holder}
    _LOCKS[path] = fd
    try:  # who holds it, for the next one; a full disk loses only that
        os.ftruncate(fd, 0)
        os.pwrite(fd, (str(req.get("info", "")) + "\n").encode(), 0)
    except OSError:
        pass
    return {"held": True}


def _unlock(req: Request) -> Request:
    fd = _LOCKS.pop(req["path"], None)
    if fd is not None:
        os.close(fd)
    return {}


def _lock_probe(req: Request) -> Request:
    try:
        fd = os.open(req["path"], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {"busy": False}
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"busy": True, "holder": os.pread(fd, 4096, 0).decode("utf-8", errors="replace")}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return {"busy": False}
    finally:
        os.close(fd)


def _facts(req: Request) -> Request:
    memory = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return {
        "hostname": os.uname().nodename,
        "kernel": os.uname().release,
        "cpus": os.cpu_count() or 1,
        "memory_bytes": memory,
        "euid": os.geteuid(),
        "state_home": state,
        "python": sys.version.split()[0],
        # The client end of this SSH session: the address kumotui's machine has as seen from here.
        "ssh_client": (os.environ.get("SSH_CONNECTION") or "").split(" ")[0],
    }


# -- host readings while a benchmark runs ---------------------------------


def _proc_text(proc: str, name: str) -> str:
    try:
        with open(os.path.join(proc, name), encoding="ascii", errors="replace") as handle:
            return handle.read(MAX_FILE_BYTES)
    except OSError:
        return ""


def _keyed(text: str, prefix: str) -> dict[str, int]:
    """A header line and a value line starting with ``prefix`` (/proc/net/snmp, netstat) as a dict."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith(prefix)]
    if len(rows) < 2:
        return {}
    return {k: int(v) for k, v in zip(rows[0], rows[1]) if v.lstrip("-").isdigit()}  # noqa: B905 (Python < 3.10 there)


def route_interface(proc: str, address: str) -> str | None:
    """The interface IPv4 traffic to ``address`` leaves by, from the main routing table (longest prefix)."""
    if address.startswith("127.") or address in ("::1", "localhost"):
        return "lo"
    try:
        target = int.from_bytes(socket.inet_aton(address), "little")
    except OSError:
        return None
    best: tuple[int, str] | None = None
    for line in _proc_text(proc, "net/route").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination, mask = int(fields[1], 16), int(fields[7], 16)
        if target & mask == destination and (best is None or bin(mask).count("1") > best[0]):
            best = (bin(mask).count("1"), fields[0])
    return best[1] if best else None


def host_counters(proc: str = "/proc", interface: str | None = None, route_to: str | None = None) -> Request:
    """Everything a live host pane shows, as raw counters, in one call (rates are the caller's).

    CPU as busy and total jiffies per core, memory, the interface's byte
    counters, TCP sockets in use / TIME_WAIT / established, file handles
    against ``fs.file-max``, listen-queue overflows, this process's open-file
    limits, and two marks of the machine that answered: this process's pid
    and how many processes it sees.
    """
    cpus = []
    for line in _proc_text(proc, "stat").splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            ticks = [int(v) for v in line.split()[1:]]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            cpus.append([sum(ticks) - idle, sum(ticks)])
    memory = {}
    for line in _proc_text(proc, "meminfo").splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemTotal", "MemAvailable"):
            memory[name] = int(rest.split()[0]) * 1024
    if interface is None and route_to:
        interface = route_interface(proc, route_to)
    rx = tx = None
    for line in _proc_text(proc, "net/dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        if interface is not None and name.strip() == interface:
            values = rest.split()
            rx, tx = int(values[0]), int(values[8])
    inuse = time_wait = 0
    for name in ("net/sockstat", "net/sockstat6"):
        for line in _proc_text(proc, name).splitlines():
            if line.startswith(("TCP:", "TCP6:")):
                fields = line.split()[1:]
                pairs = dict(zip(fields[::2], fields[1::2]))  # noqa: B905 (Python < 3.10 there)
                inuse += int(pairs.get("inuse", 0))
                time_wait += int(pairs.get("tw", 0))
    files = _proc_text(proc, "sys/fs/file-nr").split()
    netstat = _keyed(_proc_text(proc, "net/netstat"), "TcpExt:")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "cpu": cpus,
        "memory_total": memory.get("MemTotal", 0),
        "memory_available": memory.get("MemAvailable", 0),
        "interface": interface,
        "rx_bytes": rx,
        "tx_bytes": tx,
        "tcp_inuse": inuse,
        "tcp_time_wait": time_wait,
        "tcp_established": _keyed(_proc_text(proc, "net/snmp"), "Tcp:").get("CurrEstab"),
        "open_files": int(files[0]) if len(files) == 3 else 0,
        "open_files_max": int(files[2]) if len(files) == 3 else 0,
        "listen_overflows": netstat.get("ListenOverflows", 0),
        "listen_drops": netstat.get("ListenDrops", 0),
        "nofile_soft": soft,
        "nofile_hard": hard,
        "pid": os.getpid(),
        "processes": sum(1 for name in os.listdir(proc) if name.isdigit()),
        "hostname": os.uname().nodename,
    }


def _clock(_req: Request) -> Request:
    return {"ns": time.time_ns()}


def _host_counters(req: Request) -> Request:
    return host_counters(interface=req.get("interface"), route_to=req.get("route_to"))


OPS: dict[str, Any] = {
    "read": _read,
    "read_beneath": _read_beneath,
    "write_beneath": _write_beneath,
    "replace_file": _replace_file,
    "remove": _remove,
    "read_managed": _read_managed,
    "private_dir": _private_dir,
    "list_dir": _list_dir,
    "writable": _writable,
    "run": _run,
    "facts": _facts,
    "lock": _lock,
    "unlock": _unlock,
    "lock_probe": _lock_probe,
    "host_counters": _host_counters,
    "clock": _clock,
}


def answer(line: str) -> Request:
    """The reply to one request line; failures become ``ok: false`` replies, never an exit."""
    try:
        req = json.loads(line)
        reply: Request = OPS[req["op"]](req)
        reply["ok"] = True
    except Refused as error:
        reply = {"ok": False, "errno": None, "error": str(error)}
    except OSError as error:
        reply = {"ok": False, "errno": error.errno, "error": error.strerror or str(error)}
    except Exception as error:  # a bad request must not kill the channel
        reply = {"ok": False, "errno": None, "error": type(error).__name__ + ": " + str(error)}
    return reply


def main() -> None:
    """Answer requests, one JSON line each, until stdin closes (or exactly one with ``--once SECONDS``)."""
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    if sys.argv[1:2] == ["--once"]:
        # One request from `sudo -n`: die by our own alarm rather than hang a write as root.
        signal.alarm(int(sys.argv[2]))
        out.write(json.dumps(answer(sys.stdin.readline())) + "\n")
        out.flush()
        return
    for line in sys.stdin:
        out.write(json.dumps(answer(line)) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
