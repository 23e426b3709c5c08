"""Running benchmark jobs on a remote host: the SSH launcher.

Backends build argument lists and hand them to a launcher
(:class:`~kumotui.backends.process.Launcher` runs them here); this one runs
them over SSH under the watchdog, shipping kumotui's stdlib-only engines
first, so a host with Python 3 and nothing else can run a benchmark."""

from __future__ import annotations

import hashlib
import json
import shlex
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, cast

from kumotui.backends.process import LOG_LINES, Launcher
from kumotui.hosts import Host

if TYPE_CHECKING:
    from kumotui.hosts.remote import RemoteHost

ENGINES_DIR = Path(str(resources.files("kumotui.engines")))
"""The stdlib-only engines, shipped to remote hosts as they are."""
WATCHDOG = Path(str(resources.files("kumotui.hosts") / "watchdog.py"))
"""The lifeline that stops a remote job when its SSH channel closes."""


class SshLauncher(Launcher):
    """Runs argument lists on a remote host through the system ssh client.

    kumotui's engines and the watchdog are stdlib-only files: they are
    copied to a directory named by their content hash on the remote host
    (once per content), so a host with Python 3 but no kumotui can run them.
    """

    remote = True

    def __init__(self, host: RemoteHost, *, log_lines: int = LOG_LINES) -> None:
        """Run jobs on ``host`` (an open connection); ``log_lines`` bounds each job's log."""
        from kumotui.hosts.remote import ssh_options  # plumbum only when SSH is used

        super().__init__(log_lines=log_lines)
        self.host = host
        self.name = host.name
        self._options = ssh_options()
        spec = host.spec
        if spec.port:
            self._options += ["-p", str(spec.port)]
        if spec.user:
            self._options += ["-l", spec.user]
        if spec.identity:
            self._options += ["-i", str(spec.identity), "-o", "IdentitiesOnly=yes"]
        self._dir: str | None = None

    def _shipped(self) -> str:
        """Copy the engines and the watchdog over once; return the remote directory."""
        if self._dir is None:
            files = {p.name: p.read_text(encoding="utf-8") for p in (*ENGINES_DIR.glob("smtp_*.py"), WATCHDOG)}
            digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
            directory = f"{tempfile.gettempdir()}/kumotui-engines-{digest}"
            for name, text in files.items():
                self.host.replace_file(Path(directory) / name, text, mode=0o644)
            self._dir = directory
        return self._dir

    def wrap(self, argv: list[str]) -> list[str]:
        """``ssh HOST -- python3 watchdog.py ARGV``; the remote command is quoted word by word."""
        python = str(self.host.python.executable)
        remote = [python, "-u", f"{self._shipped()}/watchdog.py", "--", *argv]
        return ["ssh", *self._options, self.host.spec.host, "--", shlex.join(remote)]

    def engine(self, module: str) -> list[str]:
        """The shipped engine file, run by the remote Python."""
        return [str(self.host.python.executable), "-u", f"{self._shipped()}/{module}.py"]

    @property
    def address(self) -> str:
        """The address ssh connects to (a sink started here is reached there)."""
        return self.host.address

    def is_root(self) -> bool:
        """Whether the remote account is root."""
        return self.host.is_root()


def launcher_for(host: Host | None, *, log_lines: int = LOG_LINES) -> Launcher:
    """Local for None or the local host, SSH for a remote one."""
    if host is None or host.name == "local":
        return Launcher(log_lines=log_lines)
    return SshLauncher(cast("RemoteHost", host), log_lines=log_lines)
