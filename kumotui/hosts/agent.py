"""A tiny file and command agent kumotui runs on a remote host over SSH.

Stdlib only, so it runs on any host with Python 3 and no kumotui: its source
is sent as ``python3 -u -c SOURCE`` and then speaks one JSON object per line
on stdin/stdout. Argument lists stay lists end to end (``run`` uses
``subprocess`` without a shell), so values are data, never shell text. It
exits when stdin closes, i.e. when the SSH channel drops.
"""

import fcntl
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

Request = dict[str, Any]


def _read(req: Request) -> Request:
    results: list = []  # type: ignore[type-arg]
    for path in req["paths"]:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                results.append({"text": handle.read()})
        except OSError as error:
            results.append({"errno": error.errno, "error": error.strerror})
    return {"results": results}


def _write_value(req: Request) -> Request:
    fd = os.open(req["path"], os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, req["text"].encode())
    finally:
        os.close(fd)
    return {}


def _replace_file(req: Request) -> Request:
    path = req["path"]
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(req["text"])
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, req.get("mode", 0o644))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {}


def _remove(req: Request) -> Request:
    if os.path.lexists(req["path"]):
        os.unlink(req["path"])
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
    }


OPS: dict[str, Any] = {
    "read": _read,
    "write_value": _write_value,
    "replace_file": _replace_file,
    "remove": _remove,
    "list_dir": _list_dir,
    "writable": _writable,
    "run": _run,
    "facts": _facts,
    "lock": _lock,
    "unlock": _unlock,
    "lock_probe": _lock_probe,
}


def main() -> None:
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            reply = OPS[req["op"]](req)
            reply["ok"] = True
        except OSError as error:
            reply = {"ok": False, "errno": error.errno, "error": error.strerror or str(error)}
        except Exception as error:  # a bad request must not kill the channel
            reply = {"ok": False, "errno": None, "error": type(error).__name__ + ": " + str(error)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
