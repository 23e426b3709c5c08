"""A crash in the app ends ``kumotui`` with a non-zero status, in a real pseudo-terminal.

The app runs as ``kumotui`` does (``kumotui.cli.main``, on a simulated host,
isolated dirs) in a child process on a pty; one handler is broken on purpose
in that child only, the way a bug would be.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time
from pathlib import Path

from kumotui.cli.exit_codes import ExitStatus
from kumotui.tuning.simulate import make_simulated_host

CHILD = """
import sys
from kumotui.cli import main
from kumotui.ui.app import KumotuiApp

def broken(self):
    raise RuntimeError("a bug on purpose")

if sys.argv[1] == "crash":
    KumotuiApp.on_mount = broken
else:
    KumotuiApp.on_mount = lambda self: self.call_later(self.exit)
sys.exit(main(sys.argv[2:]))
"""


def run_in_pty(mode: str, flags: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """Run the app on an 80x24 pty until it exits; its exit status and what it drew."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of its own
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execve(sys.executable, [sys.executable, "-c", CHILD, mode, *flags], env)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed its side
                    break
                if not chunk:
                    break
                output += chunk
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), output
        else:
            os.kill(pid, 9)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


def test_a_crash_exits_non_zero_and_a_clean_quit_exits_zero(tmp_path: Path) -> None:
    settings = make_simulated_host(tmp_path / "host")
    flags = [
        f"--sysctl-root={settings.sysctl_root}",
        f"--sysctl-d={settings.sysctl_d}",
        f"--state-dir={settings.state_dir}",
        f"--system-root={settings.system_root}",
    ]
    env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(Path(__file__).parents[2])}
    status, output = run_in_pty("crash", flags, env)
    assert status == ExitStatus.CRASHED, output[-2000:]
    assert b"a bug on purpose" in output
    status, output = run_in_pty("quit", flags, env)
    assert status == ExitStatus.OK, output[-2000:]
