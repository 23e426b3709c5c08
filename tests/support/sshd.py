"""A real OpenSSH server on 127.0.0.1 for tests, with throwaway keys.

It listens on a free high port (never 22), accepts one generated client key
for the current user, and is stopped by PID when the test ends. The client
side is an ssh_config file that kumotui is pointed at with
``KUMOTUI_SSH_CONFIG``, so the user's own ~/.ssh is never read or changed.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port, stop
from tests.support.waits import wait_listening

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class Sshd:
    """A running test sshd and the client files that reach it."""

    port: int
    user: str
    ssh_config: Path
    client_key: Path
    known_hosts: Path
    process: subprocess.Popen[bytes]
    alias: str = "kumotui-test"

    @property
    def spec(self) -> str:
        """The ``--host`` value that reaches this server through the config alias."""
        return self.alias

    def env(self) -> dict[str, str]:
        """Environment for a kumotui subprocess that should use this server."""
        return {"KUMOTUI_SSH_CONFIG": str(self.ssh_config)}

    def stop(self) -> None:
        """Stop the server by PID and reap it."""
        stop(self.process)


def available() -> bool:
    """Whether sshd and ssh-keygen are installed."""
    return Path(SSHD).exists() and shutil.which("ssh-keygen") is not None and shutil.which("ssh") is not None


def start_sshd(workdir: Path) -> Sshd:
    """Generate keys and config under ``workdir`` and start sshd in the foreground."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)
    host_key = workdir / "host_ed25519"
    client_key = workdir / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    user = getpass.getuser()
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "MaxSessions 50\nMaxStartups 50\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    known_hosts = workdir / "known_hosts"
    host_pub = host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text(
        f"Host kumotui-test\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
        f"  IdentityFile {client_key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known_hosts}\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n"
        f"Host 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n"
    )
    try:
        wait_listening(port, timeout=10, process=process)
    except BaseException:
        stop(process)
        raise
    return Sshd(port, user, ssh_config, client_key, known_hosts, process)


if __name__ == "__main__":  # manual use: start one and print how to reach it
    import tempfile

    server = start_sshd(Path(tempfile.mkdtemp(prefix="kumotui-sshd-")))
    print(f"KUMOTUI_SSH_CONFIG={server.ssh_config} --host {server.alias}  (pid {server.process.pid})")


def alias_config(path: Path, aliases: dict[str, Sshd]) -> Path:
    """One ssh_config naming several test servers (or one server under several names): "hosts" for
    tests of runs that span machines, each alias its own SSH connection and agent."""
    blocks = [
        f"Host {alias}\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        f"  IdentityFile {server.client_key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {server.known_hosts}\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n"
        for alias, server in aliases.items()
    ]
    path.write_text("".join(blocks))
    return path
