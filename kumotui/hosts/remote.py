"""A remote host over SSH: plumbum's SshMachine plus kumotui's agent.

The system OpenSSH client does the connecting, so the user's keys, agent,
``~/.ssh/config`` and known_hosts all apply. Once connected, one persistent
channel runs :mod:`kumotui.agent` (``python3 -u -c SOURCE``) and every file
read, write or command is a JSON request on it: about a millisecond each
instead of a new SSH connection (a few hundred ms) per command.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plumbum import SshMachine, local
from plumbum.commands.processes import CommandNotFound, ProcessExecutionError, ProcessTimedOut

from kumotui.errors import KumotuiError
from kumotui.hosts import Completed, HostFacts, ManagedFile, agent
from kumotui.hosts.address import HostSpec

AGENT_SOURCE = Path(agent.__file__).read_text(encoding="utf-8")


def ssh_options() -> list[str]:
    """Options every connection gets: never prompt (a TUI cannot answer)."""
    options = ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
    config = os.environ.get("KUMOTUI_SSH_CONFIG")
    if config:
        options = ["-F", config, *options]
    return options


def explain_ssh_failure(spec: HostSpec, stderr: str) -> str:
    """Turn OpenSSH's stderr into one clear sentence naming the host."""
    text = stderr.strip()
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        return (
            f"{spec}: host key verification failed: the server's key does not match known_hosts "
            "(or it is unknown). Check the key, then update known_hosts; kumotui never accepts it for you."
        )
    if "Permission denied" in text:
        return f"{spec}: authentication refused (publickey). Check --identity, your ssh-agent or ~/.ssh/config."
    if "Connection refused" in text:
        return f"{spec}: connection refused: no SSH server listening on that port."
    if "timed out" in text or "No route to host" in text or "Network is unreachable" in text:
        return f"{spec}: unreachable ({text.splitlines()[-1]})."
    if "Could not resolve hostname" in text:
        return f"{spec}: unknown host name."
    last = text.splitlines()[-1] if text else "ssh failed"
    return f"{spec}: {last}"


class RemoteHost:
    """Files and commands on a remote machine, through one agent channel."""

    def __init__(self, spec: HostSpec, connect_timeout: float = 10) -> None:
        self.spec = spec
        self.name = str(spec)
        self._lock = threading.Lock()
        options = ssh_options()
        if spec.identity:
            options += ["-o", "IdentitiesOnly=yes"]
        try:
            self.machine = SshMachine(
                spec.host,
                user=spec.user,
                port=spec.port,
                keyfile=str(spec.identity) if spec.identity else None,
                ssh_opts=options,
                connect_timeout=connect_timeout,
            )
        except (ProcessExecutionError, EOFError, OSError):
            # plumbum keeps only the first line of ssh's stderr; ask ssh again for the whole story.
            raise KumotuiError(explain_ssh_failure(spec, _diagnose(spec, options, connect_timeout))) from None
        interpreter = os.environ.get("KUMOTUI_REMOTE_PYTHON", "python3")
        try:
            python = self.machine[interpreter]
        except CommandNotFound:
            self.machine.close()
            raise KumotuiError(
                f"{spec}: the remote host has no {interpreter} on its PATH; kumotui needs Python 3 there "
                "(Debian: apt-get install python3-minimal; or set KUMOTUI_REMOTE_PYTHON to its path)"
            ) from None
        self.python = python
        self._agent = python["-u", "-c", AGENT_SOURCE].popen(encoding="utf-8")
        assert self._agent.stdin is not None and self._agent.stdout is not None
        self._to_agent, self._from_agent = self._agent.stdin, self._agent.stdout
        hello = self._from_agent.readline()
        if not hello.startswith("{"):
            self.close()
            raise KumotuiError(f"{spec}: the remote agent did not start ({hello.strip() or 'no output'})")
        self._facts: dict[str, Any] | None = None
        self._address: str | None = None

    @property
    def address(self) -> str:
        """The address ssh really connects to (``HostName`` from ssh_config
        resolved by ``ssh -G``), for traffic aimed at this host."""
        if self._address is None:
            self._address = self.spec.host
            try:
                _code, out, _err = local["ssh"][(*ssh_options(), "-G", self.spec.host)].run(retcode=None, timeout=10)
            except (ProcessTimedOut, CommandNotFound, OSError):  # fall back to the name as given
                out = ""
            for line in str(out).splitlines():
                if line.startswith("hostname "):
                    self._address = line.split(None, 1)[1].strip()
        return self._address

    def close(self) -> None:
        """Close the agent channel and the SSH master session."""
        agent_process = getattr(self, "_agent", None)
        if agent_process is not None and agent_process.poll() is None:
            self._to_agent.close()
            try:
                agent_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                agent_process.kill()
        self.machine.close()

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request on the agent channel; raises OSError like a local call."""
        with self._lock:
            if self._agent.poll() is not None:
                raise KumotuiError(f"{self.spec}: the SSH connection was lost")
            try:
                self._to_agent.write(json.dumps({"op": op, **fields}) + "\n")
                self._to_agent.flush()
            except (BrokenPipeError, ValueError):
                raise KumotuiError(f"{self.spec}: the SSH connection was lost") from None
            line = self._from_agent.readline()
        if not line:
            raise KumotuiError(f"{self.spec}: the SSH connection was lost")
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            code = reply.get("errno")
            if code is None:
                raise KumotuiError(f"{self.spec}: agent error: {reply.get('error')}")
            raise OSError(code, reply.get("error") or os.strerror(code))
        return reply

    def read_text(self, path: Path) -> str:
        """A remote file's text; raises FileNotFoundError etc. like open()."""
        (result,) = self.request("read", paths=[str(path)])["results"]
        if "text" in result:
            return str(result["text"])
        code = result["errno"]
        raise _oserror(code, result["error"], path)

    def read_many(self, paths: Sequence[Path]) -> list[str | OSError]:
        """Several files in one round trip."""
        out: list[str | OSError] = []
        for path, result in zip(paths, self.request("read", paths=[str(p) for p in paths])["results"], strict=True):
            out.append(result["text"] if "text" in result else _oserror(result["errno"], result["error"], path))
        return out

    def read_value(self, root: Path, relative: str) -> str:
        """A kernel parameter read beneath ``root`` by the agent (no link followed, never outside)."""
        (result,) = self.request("read_beneath", root=str(root), relatives=[relative])["results"]
        if "text" in result:
            return str(result["text"])
        raise _oserror(result["errno"], result["error"], root / relative)

    def write_value(self, root: Path, relative: str, text: str) -> None:
        """A single write(2) beneath ``root`` on the remote host; the kernel's errno comes back."""
        self.request("write_beneath", root=str(root), relative=relative, text=text)

    def read_managed(self, path: Path) -> ManagedFile | None:
        """A remote drop-in's text and mode (None when absent); the agent refuses a link."""
        reply = self.request("read_managed", path=str(path))
        return None if reply.get("absent") else ManagedFile(str(reply["text"]), int(reply["mode"]))

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Atomic replace on the remote host (``O_EXCL`` temp file; links and shared dirs refused)."""
        self.request("replace_file", path=str(path), text=text, mode=mode)

    def check_private_dir(self, path: Path) -> None:
        """The agent refuses a remote state dir that someone else could change."""
        self.request("private_dir", path=str(path))

    def remove_file(self, path: Path) -> None:
        """Remove a remote file if present."""
        self.request("remove", path=str(path))

    def list_dir(self, path: Path) -> list[str]:
        """Names in a remote directory."""
        return list(self.request("list_dir", path=str(path))["names"])

    def writable(self, path: Path) -> bool:
        """Whether the remote user may write ``path`` (or create it)."""
        return bool(self.request("writable", path=str(path))["writable"])

    def run(self, args: Sequence[str], stdin: str | None = None) -> Completed:
        """Run an argument list on the remote host (no shell)."""
        reply = self.request("run", args=list(args), stdin=stdin)
        return Completed(int(reply["code"]), str(reply["stdout"]), str(reply["stderr"]))

    def info(self) -> dict[str, Any]:
        """Facts plus the remote euid and state home (cached)."""
        if self._facts is None:
            self._facts = self.request("facts")
        return self._facts

    def is_root(self) -> bool:
        """Whether the remote user is root."""
        return int(self.info()["euid"]) == 0

    def default_state_dir(self) -> Path:
        """The journal's home on the remote host, by the same rule as locally."""
        if self.is_root():
            return Path("/var/lib/kumotui")
        return Path(self.info()["state_home"]) / "kumotui"

    def facts(self) -> HostFacts:
        """Hostname, kernel release, CPU count and memory of the remote host."""
        info = self.info()
        return HostFacts(str(info["hostname"]), str(info["kernel"]), int(info["cpus"]), int(info["memory_bytes"]))


def _oserror(code: int, message: str, path: Path) -> OSError:
    if code == errno.ENOENT:
        return FileNotFoundError(code, message, str(path))
    if code in (errno.EACCES, errno.EPERM):
        return PermissionError(code, message, str(path))
    if code == errno.EISDIR:
        return IsADirectoryError(code, message, str(path))
    return OSError(code, message, str(path))


def _diagnose(spec: HostSpec, options: list[str], timeout: float) -> str:
    """Run ``ssh HOST true`` once more (argument list) and return its stderr."""
    args = [*options, "-o", f"ConnectTimeout={int(timeout)}"]
    if spec.port:
        args += ["-p", str(spec.port)]
    if spec.user:
        args += ["-l", spec.user]
    if spec.identity:
        args += ["-i", str(spec.identity)]
    try:
        _code, _out, err = local["ssh"][(*args, spec.host, "true")].run(retcode=None, timeout=timeout + 5)
    except (ProcessTimedOut, CommandNotFound, OSError) as error:  # ssh missing, or it hung past the timeout
        return str(error)
    return str(err)
