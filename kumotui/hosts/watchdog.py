"""Run a command until stdin closes, then stop it: a remote job's lifeline.

kumotui starts remote jobs as ``ssh HOST -- python3 watchdog.py -- CMD ...``.
When the SSH channel closes (kumotui stopped the job, quit, crashed, or the
network dropped), sshd closes our stdin; we then send SIGTERM to the
command's whole process group, wait a few seconds for its final output, and
SIGKILL what is left. SIGTERM or SIGHUP to us does the same. Stdlib only:
this file is copied to hosts that have Python 3 but no kumotui.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading

GRACE_SECONDS = 5.0


def main() -> int:
    """Run the command after ``--``; return its exit status."""
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
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

    def watch_stdin() -> None:
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
