"""Running benchmark jobs on a remote host: the SSH launcher.

Backends build argument lists and hand them to a launcher
(:class:`~kumotui.backends.process.Launcher` runs them here); this one runs
them over SSH under the watchdog, shipping kumotui's stdlib-only engines
first, so a host with Python 3 and nothing else can run a benchmark.

Where the files go is a security decision: a directory with a name anyone
can predict (``/tmp/kumotui-engines-<hash>``) can be made first by another
local user, with a ``signal.py`` beside our ``watchdog.py`` that Python would
import as root. So each job gets its own directory, made by ``mkdtemp`` on
the remote host (a fresh random name, created atomically, mode 0700) and
checked there before anything is copied in: it must be a directory owned by
the remote account and closed to everyone else, in a parent where nobody
else can rename it away (not group- or world-writable unless sticky, owned
by root or the account). The job's watchdog removes the directory when the
job ends, kumotui's death and a dropped connection included; the launcher
removes any that no job took, when it is closed.
"""

from __future__ import annotations

import shlex
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, cast

from kumotui.backends.process import LOG_LINES, ClockOffset, Launcher
from kumotui.errors import KumotuiError
from kumotui.hosts import Host

if TYPE_CHECKING:
    from kumotui.hosts.remote import RemoteHost

ENGINES_DIR = Path(str(resources.files("kumotui.engines")))
"""The stdlib-only engines and the watchdog, shipped to remote hosts as they are."""
SHIPPED = (*sorted(p.name for p in ENGINES_DIR.glob("smtp_*.py")), "watchdog.py")
"""What a job's private directory holds."""
REMOTE_TMPDIR: str | None = None
"""Where on the remote host private directories are made: None for the remote
Python's own ``tempfile.gettempdir()`` (``$TMPDIR`` or /tmp). Tests point it
at a directory of their own."""

MAKE_PRIVATE_DIR = r"""
import os, stat, sys, tempfile
parent = sys.argv[1] or tempfile.gettempdir()
me = os.geteuid()
info = os.stat(parent)
if not stat.S_ISDIR(info.st_mode):
    sys.exit("not a directory: " + parent)
if info.st_uid not in (0, me):
    sys.exit("owned by another account (uid %d): %s" % (info.st_uid, parent))
if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
    sys.exit("writable by others without the sticky bit: " + parent)
path = tempfile.mkdtemp(prefix="kumotui-engines-", dir=parent)
info = os.lstat(path)
if not stat.S_ISDIR(info.st_mode) or info.st_uid != me or stat.S_IMODE(info.st_mode) != 0o700:
    sys.exit("not private after mkdtemp: " + path)
print(path)
"""
"""Run by the remote Python in isolated mode (``-I``: no current directory or
user site on its path): make a private directory and check it, or say why not."""

REMOVE_PRIVATE_DIRS = r"""
import os, shutil, stat, sys
for path in sys.argv[1:]:
    try:
        info = os.lstat(path)
    except OSError:
        continue
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and "/kumotui-engines-" in path:
        shutil.rmtree(path, ignore_errors=True)
"""
"""Removes private directories this launcher made (and nothing that merely looks like one)."""


class SshLauncher(Launcher):
    """Runs argument lists on a remote host through the system ssh client.

    kumotui's engines and the watchdog are stdlib-only files: they are
    copied into a private directory per job on the remote host (see the
    module's docstring), so a host with Python 3 but no kumotui can run them.
    """

    remote = True

    def __init__(self, host: RemoteHost, *, log_lines: int = LOG_LINES) -> None:
        """Run jobs on ``host`` (an open connection); ``log_lines`` bounds each job's log."""
        from kumotui.hosts.remote import ssh_options  # plumbum only when SSH is used

        super().__init__(log_lines=log_lines)
        self.host = host
        self.name = host.name
        self._options = ssh_options(host.connect_timeout)
        spec = host.spec
        if spec.port:
            self._options += ["-p", str(spec.port)]
        if spec.user:
            self._options += ["-l", spec.user]
        if spec.identity:
            self._options += ["-i", str(spec.identity), "-o", "IdentitiesOnly=yes"]
        self._made: list[str] = []
        """Every private directory made, until :meth:`close` removes those still there."""
        self._unclaimed: list[str] = []
        """Directories made by :meth:`engine` that no :meth:`wrap` has used yet."""
        self._staged: str | None = None
        """A directory :meth:`ship` copied data into, for the next :meth:`engine` to run from."""
        host.on_close(self.close)

    @property
    def _python(self) -> str:
        return str(self.host.python.executable)

    def _private_dir(self) -> str:
        """A fresh private directory on the remote host with the engines and the watchdog in it."""
        made = self.host.run([self._python, "-I", "-c", MAKE_PRIVATE_DIR, REMOTE_TMPDIR or ""])
        path = made.stdout.strip()
        if made.code != 0 or not path.startswith("/") or "\n" in path:
            reason = made.stderr.strip().splitlines()[-1] if made.stderr.strip() else f"exit status {made.code}"
            raise KumotuiError(f"{self.host.spec}: cannot make a private directory for kumotui's engines: {reason}")
        self._made.append(path)
        for name in SHIPPED:
            self.host.replace_file(Path(path) / name, (ENGINES_DIR / name).read_text(encoding="utf-8"), mode=0o600)
        return path

    def wrap(self, argv: list[str], remove_after: Path | None = None) -> list[str]:
        """``ssh OPTIONS -- HOST 'python3 DIR/watchdog.py --remove-dir DIR -- ARGV'``, quoted word by word.

        DIR is the private directory :meth:`engine` made for this job's
        engine, or a new one for the watchdog alone; ``remove_after`` is a
        further directory on the remote host for the watchdog to remove.
        """
        directory = next((d for d in self._unclaimed if any(arg.startswith(d + "/") for arg in argv)), None)
        if directory is not None:
            self._unclaimed.remove(directory)
        else:
            directory = self._private_dir()
        cleanup = ["--remove-dir", directory]
        if remove_after is not None:
            cleanup += ["--remove-dir", str(remove_after)]
        remote = [self._python, "-u", f"{directory}/watchdog.py", *cleanup, "--", *argv]
        return ["ssh", *self._options, "--", self.host.spec.host, shlex.join(remote)]

    def ship(self, path: Path) -> str:
        """Copy the data file ``path`` (a responses file) into the next engine's private directory.

        Why there: the directory is private, made fresh per job, and removed
        by the job's watchdog when it ends, so the file neither lingers nor can
        be swapped by another account. Returns its path on the remote host.

        Raises:
            KumotuiError: the file cannot be read here.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise KumotuiError(f"{path}: cannot read it to copy to {self.host.spec}: {error.strerror}") from None
        if self._staged is None:
            self._staged = self._private_dir()
        shipped = f"{self._staged}/data-{path.name}"
        self.host.replace_file(Path(shipped), text, mode=0o600)
        return shipped

    def engine(self, module: str) -> list[str]:
        """The engine's file in a new private directory (or the one :meth:`ship` filled), run by the remote Python."""
        directory, self._staged = self._staged or self._private_dir(), None
        self._unclaimed.append(directory)
        return [self._python, "-u", f"{directory}/{module}.py"]

    def close(self) -> None:
        """Remove the private directories still there (a job's watchdog removes its own when it ends)."""
        made, self._made, self._unclaimed, self._staged = self._made, [], [], None
        if made:
            self.host.run([self._python, "-I", "-c", REMOVE_PRIVATE_DIRS, *made])

    @property
    def address(self) -> str:
        """The address ssh connects to (a sink started here is reached there)."""
        return self.host.address

    @property
    def home_address(self) -> str:
        """This machine's address as the remote host sees it: the client end of the SSH connection
        (``SSH_CONNECTION`` there), the one address of ours the remote host is known to reach."""
        return self.host.home_address

    def is_root(self) -> bool:
        """Whether the remote account is root."""
        return self.host.is_root()

    def clock_offset(self) -> ClockOffset:
        """The remote wall clock's offset from ours, measured over the agent channel (five exchanges)."""
        return ClockOffset.estimate(self.host.clock_exchanges())


def launcher_for(host: Host | None, *, log_lines: int = LOG_LINES) -> Launcher:
    """Local for None or the local host, SSH for a remote one."""
    if host is None or host.name == "local":
        return Launcher(log_lines=log_lines)
    return SshLauncher(cast("RemoteHost", host), log_lines=log_lines)
