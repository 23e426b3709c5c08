"""Run a command until stdin closes, then stop it: every job's lifeline.

kumotui starts each benchmark job as ``python3 watchdog.py [--remove-dir DIR]
-- CMD ...``: here (the local launcher) and on remote hosts (``ssh HOST --
...``). kumotui holds our stdin; when it closes (kumotui stopped the job,
quit, crashed, was SIGKILLed, or the SSH channel dropped) we send SIGTERM to
the command's whole process group, wait a few seconds for its final output,
and SIGKILL what is left. SIGTERM or SIGHUP to us does the same. So a tool
that never reads its stdin (kumod, traffic-gen, smtp-sink) cannot outlive
kumotui, and neither can the workers it forked.

``--remove-dir DIR`` (repeatable) removes a directory once the command has
ended: the job's private copy of the engines on a remote host, kumod's
policy and spool directory here. A process killed with SIGKILL cannot clean
up after itself; its watchdog can.

Stdlib only, beside the engines: it is copied to hosts that have Python 3 but
no kumotui.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading

GRACE_SECONDS = 5.0


def parse(argv: list[str]) -> tuple[list[str], list[str]]:
    """``[--remove-dir DIR]... -- CMD...`` into (directories, command)."""
    directories: list[str] = []
    rest = list(argv)
    while rest and rest[0] == "--remove-dir" and len(rest) > 1:
        directories.append(rest[1])
        rest = rest[2:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    return directories, rest


def main() -> int:
    """Run the command after ``--``; return its exit status."""
    directories, argv = parse(sys.argv[1:])
    try:
        return _watch(argv)
    finally:
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


def _watch(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("watchdog: no command given\n")
        return 2
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)
    except OSError as error:
        sys.stderr.write(f"watchdog: cannot start {argv[0]}: {error.strerror}\n")
        return 127
    stopping = threading.Event()

    def stop(*_: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        if child.stdin is not None:
            with contextlib.suppress(OSError):
                child.stdin.close()
        _signal_group(child.pid, signal.SIGTERM)
        try:
            child.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop).start())
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=stop).start())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl+C is kumotui's to handle

    def watch_stdin() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        stop()

    threading.Thread(target=watch_stdin, daemon=True).start()
    code = child.wait()
    _signal_group(child.pid, signal.SIGKILL)  # workers the command left behind
    return code if code >= 0 else 128 - code


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


if __name__ == "__main__":
    sys.exit(main())
